/** @module Checks the install step that completes the demo encoder folder. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import { ensureDemoEncoder, READER_MIXING, READER_WEIGHTS } from './ensure.ts'
import { sha256Hex } from '@latentbase/shared/util/sha256'

/** Reader files of the real Llama 2 vocabulary with 2-dimensional vectors, so each build takes milliseconds. */
function writeReader(dir: string, vocab = 32000, seed = 1, mixing = { decay: 0.9, gain: 2 }): void {
  const vectors = Float32Array.from({ length: vocab * 2 }, (_, i) => Math.sin(i * seed))
  const weights = new Float32Array(vocab).fill(0.5)
  writeFileSync(
    join(dir, READER_WEIGHTS),
    writeSafetensors({
      token_vectors: { dtype: 'F16', shape: [vocab, 2], data: vectors },
      token_weights: { dtype: 'F32', shape: [vocab], data: weights }
    })
  )
  writeFileSync(join(dir, READER_MIXING), JSON.stringify(mixing))
}

test('builds once, then only when the weights, the mixing or the file change, and flags a mismatched SAE', t => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-encoder-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeReader(dir)

  const first = ensureDemoEncoder(dir)
  assert.equal(first.readerBuilt, true)
  assert.deepEqual(first.tokenizerFilesCopied, ['tokenizer.json', 'tokenizer_config.json'])
  assert.equal(sha256Hex(readFileSync(join(dir, 'reader.onnx'))), first.readerSha256)
  assert.equal(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.type, 'BPE')

  const second = ensureDemoEncoder(dir)
  assert.equal(second.readerBuilt, false)
  assert.deepEqual(second.tokenizerFilesCopied, [])
  assert.equal(second.readerSha256, first.readerSha256)

  writeFileSync(join(dir, 'reader.onnx'), 'truncated')
  assert.equal(ensureDemoEncoder(dir).readerBuilt, true, 'a damaged reader is rebuilt')

  writeReader(dir, 32000, 1, { decay: 0.8, gain: 2 })
  const remixed = ensureDemoEncoder(dir)
  assert.equal(remixed.readerBuilt, true, 'new mixing constants rebuild')
  assert.notEqual(remixed.readerSha256, first.readerSha256)

  writeReader(dir, 32000, 2)
  const retrained = ensureDemoEncoder(dir)
  assert.equal(retrained.readerBuilt, true, 'new weights rebuild')
  assert.notEqual(retrained.readerSha256, first.readerSha256)

  writeFileSync(join(dir, 'training-report.json'), JSON.stringify({ reader: { sha256: first.readerSha256 } }))
  assert.deepEqual(ensureDemoEncoder(dir).mismatch, { expected: first.readerSha256, actual: retrained.readerSha256 })
  writeReader(dir)
  assert.equal(ensureDemoEncoder(dir).mismatch, undefined)
})

test('refuses reader weights whose table does not match the tokenizer vocabulary', t => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-encoder-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeReader(dir, 50)
  assert.throws(() => ensureDemoEncoder(dir), /32000 tokens but the reader weights have 50 rows/)
})
