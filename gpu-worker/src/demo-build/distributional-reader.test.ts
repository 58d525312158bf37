/** @module Checks the distributional reader's ONNX graph against an independent float64 forward pass, and the committed reader against the SAE's training report. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as ort from 'onnxruntime-node'
import { halfToFloat32, float32ToHalf } from '@latentbase/shared/tensor/float16'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import {
  buildDistributionalReader,
  parseReaderWeights,
  READER_OUTPUT,
  type ReaderWeightsFile
} from './distributional-reader.ts'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { DEMO_DIR, READER_MIXING, READER_WEIGHTS } from './ensure.ts'
import { xoshiro128 } from '@latentbase/shared/util/random'

const V = 40,
  D = 6

function tinyWeights(): ReaderWeightsFile {
  const next = xoshiro128(5)
  const vectors = float32ToHalf(Float32Array.from({ length: V * D }, () => 2 * next() - 1))
  const weights = Float32Array.from({ length: V }, (_, i) => (i === 1 ? 0 : 0.1 + next()))
  return { vectors, weights, vocab: V, dim: D }
}

/** The definition, term by term in float64: concat(e_t, gain * sum_s decay^(t-s) w_s e_s / (sum_s decay^(t-s) w_s + eps)). */
function reference(w: ReaderWeightsFile, decay: number, gain: number, ids: number[]): number[][] {
  const e = halfToFloat32(w.vectors)
  return ids.map((id, t) => {
    const num = new Array<number>(D).fill(0)
    let den = 0
    for (let s = 0; s <= t; s++) {
      const f = decay ** (t - s) * w.weights[ids[s]]
      den += f
      for (let d = 0; d < D; d++) num[d] += f * e[ids[s] * D + d]
    }
    return [...Array.from(e.subarray(id * D, (id + 1) * D)), ...num.map(x => (gain * x) / (den + 1e-6))]
  })
}

test('the graph computes token vectors and the causal decayed context average, padding ignored', async () => {
  const w = tinyWeights()
  const decay = 0.8,
    gain = 1.5
  const session = await ort.InferenceSession.create(buildDistributionalReader(w, { decay, gain }))
  const rows = [
    [1, 5, 9, 9, 30, 2, 17],
    [1, 39, 4]
  ]
  const T = 7
  const ids = new BigInt64Array(2 * T),
    mask = new BigInt64Array(2 * T)
  rows.forEach((r, b) => {
    r.forEach((id, t) => {
      ids[b * T + t] = BigInt(id)
      mask[b * T + t] = 1n
    })
  })
  const out = await session.run({
    input_ids: new ort.Tensor('int64', ids, [2, T]),
    attention_mask: new ort.Tensor('int64', mask, [2, T])
  })
  const h = out[READER_OUTPUT]
  assert.deepEqual(h.dims, [2, T, 2 * D])
  const data = h.data as Float32Array
  rows.forEach((r, b) => {
    const ref = reference(w, decay, gain, r)
    for (let t = 0; t < r.length; t++) {
      for (let d = 0; d < 2 * D; d++) {
        const got = data[(b * T + t) * 2 * D + d]
        assert.ok(Math.abs(got - ref[t][d]) < 1e-5, `row ${b} token ${t} dim ${d}: ${got} vs ${ref[t][d]}`)
      }
    }
  })
  await session.release()
})

test('bad mixing constants and malformed weight files are refused with the reason', () => {
  const w = tinyWeights()
  assert.throws(() => buildDistributionalReader(w, { decay: 1, gain: 1 }), /decay must be in \(0, 1\)/)
  assert.throws(() => buildDistributionalReader(w, { decay: 0.5, gain: 0 }), /gain must be positive/)
  assert.throws(
    () => parseReaderWeights(writeSafetensors({ other: { dtype: 'F32', shape: [1], data: Float32Array.of(0) } })),
    /need token_vectors, F16 \[vocab, dim\]/
  )
})

test('the committed reader is the one the committed SAE was trained on', () => {
  const report = JSON.parse(readFileSync(new URL('training-report.json', `file://${DEMO_DIR}`), 'utf8')) as {
    reader: { sha256: string }
  }
  const weights = parseReaderWeights(readFileSync(`${DEMO_DIR}${READER_WEIGHTS}`))
  const mixing = JSON.parse(readFileSync(`${DEMO_DIR}${READER_MIXING}`, 'utf8'))
  assert.equal(sha256Hex(buildDistributionalReader(weights, mixing)), report.reader.sha256)
})
