/** @module Checks that the cached chunked tokenization gives exactly the Llama 2 tokenizer's ids. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { DEMO_DIR } from './ensure.ts'
import { CachedTokenizer, checkChunkable } from './fast-tokenize.ts'
import { npyBytes } from './tokenize-corpus.ts'

const tokenizerJson = JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer.json'), 'utf8'))
const tokenizer = new Tokenizer(
  tokenizerJson,
  JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer_config.json'), 'utf8'))
)

test('the same ids as encode() on prose, e-mail, code, odd spacing, newlines and non-Latin text', () => {
  checkChunkable(Object.keys(tokenizerJson.model.vocab))
  const cached = new CachedTokenizer(tokenizer)
  const texts = [
    'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,',
    'From: root@localhost\n> quoted reply\n\n<html><body><font size=3D"2">FREE!!! $$$</font></body></html>',
    'def f(x):\n    return  x ** 2\t# tab\n\n\n',
    '  leading spaces, trailing spaces   ',
    'naïve café, Straße, 東京, Москва, emoji 🐋 and \u00a0no-break',
    'a\nb\n\nc \n d',
    ' ',
    ''
  ]
  for (let round = 0; round < 2; round++) {
    // the second round is served from the cache
    for (const t of texts)
      assert.deepEqual(cached.encode(t), tokenizer.encode(t, { add_special_tokens: false }).ids, JSON.stringify(t))
  }
})

test('a vocabulary with a token that crosses a word start is refused', () => {
  assert.throws(() => checkChunkable(['▁the', 'a▁b']), /"a▁b"/)
  assert.throws(() => checkChunkable(['x\ny']), /chunked tokenization would differ/)
})

test('npy files carry a 64-byte aligned header that numpy reads', () => {
  const b = npyBytes(Uint16Array.of(1, 2, 3))
  assert.equal(b.subarray(0, 6).toString('latin1'), '\x93NUMPY')
  const headerLength = b.readUInt16LE(8)
  assert.equal((10 + headerLength) % 64, 0)
  assert.match(
    b.subarray(10, 10 + headerLength).toString('latin1'),
    /'descr': '<u2', 'fortran_order': False, 'shape': \(3,\)/
  )
  assert.deepEqual(
    [...new Uint16Array(b.buffer.slice(b.byteOffset + 10 + headerLength, b.byteOffset + b.length))],
    [1, 2, 3]
  )
})
