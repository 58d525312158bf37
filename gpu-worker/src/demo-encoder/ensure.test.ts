/** @module Checks the install step that completes the demo encoder folder. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureDemoEncoder } from './ensure.ts'
import { sha256Hex, type ReaderSpec } from './reader-onnx.ts'

// The real Llama 2 vocabulary with a tiny body, so each build takes milliseconds.
const SPEC: ReaderSpec = { vocab: 32000, dModel: 8, nHeads: 2, dMlp: 16, nLayers: 1, maxPositions: 8, seed: 3 }

test('builds once, then only when the build key or the file changes, and flags a mismatched SAE', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-encoder-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))

  const first = ensureDemoEncoder(dir, SPEC)
  assert.equal(first.readerBuilt, true)
  assert.deepEqual(first.tokenizerFilesCopied, ['tokenizer.json', 'tokenizer_config.json'])
  assert.equal(sha256Hex(readFileSync(join(dir, 'reader.onnx'))), first.readerSha256)
  assert.equal(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.type, 'BPE')

  const second = ensureDemoEncoder(dir, SPEC)
  assert.equal(second.readerBuilt, false)
  assert.deepEqual(second.tokenizerFilesCopied, [])
  assert.equal(second.readerSha256, first.readerSha256)

  writeFileSync(join(dir, 'reader.onnx'), 'truncated')
  assert.equal(ensureDemoEncoder(dir, SPEC).readerBuilt, true, 'a damaged reader is rebuilt')

  const reseeded = ensureDemoEncoder(dir, { ...SPEC, seed: 4 })
  assert.equal(reseeded.readerBuilt, true, 'a new build key rebuilds')
  assert.notEqual(reseeded.readerSha256, first.readerSha256)

  writeFileSync(join(dir, 'training-report.json'), JSON.stringify({ reader: { sha256: first.readerSha256 } }))
  assert.deepEqual(ensureDemoEncoder(dir, { ...SPEC, seed: 4 }).mismatch, { expected: first.readerSha256, actual: reseeded.readerSha256 })
  assert.equal(ensureDemoEncoder(dir, SPEC).mismatch, undefined)
})

test('refuses a reader whose embedding does not match the tokenizer vocabulary', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-encoder-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  assert.throws(() => ensureDemoEncoder(dir, { ...SPEC, vocab: 50 }), /32000 tokens but the reader spec expects 50/)
})
