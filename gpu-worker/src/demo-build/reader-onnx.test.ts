/** @module Checks the demo reader's ONNX graph against an independent float64 forward pass. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as ort from 'onnxruntime-node'
import {
  buildReaderModel,
  generateReaderWeights,
  readerBuildKey,
  type ReaderSpec,
  type ReaderWeights
} from './reader-onnx.ts'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { xoshiro128 } from '@latentbase/shared/util/random'

const TINY: ReaderSpec = { vocab: 50, dModel: 16, nHeads: 2, dMlp: 64, nLayers: 2, maxPositions: 16, seed: 7 }

/**
 * GPT-2 forward pass of one unpadded sequence in float64, written from the architecture's definition
 * rather than from the graph code: returns hidden states [nLayers + 1][T][D].
 */
function referenceForward(spec: ReaderSpec, w: ReaderWeights, ids: number[]): number[][][] {
  const { dModel: D, nHeads: H, dMlp } = spec
  const dh = D / H
  const T = ids.length
  const matvec = (x: number[], W: Float32Array, b: Float32Array, dIn: number, dOut: number) => {
    const y = Array.from(b, Number)
    for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) y[j] += x[i] * W[i * dOut + j]
    return y
  }
  const layerNorm = (x: number[], gain: Float32Array, bias: Float32Array) => {
    const mean = x.reduce((a, b) => a + b, 0) / D
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / D
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gain[i] + bias[i])
  }
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
  let x = ids.map((id, t) => Array.from({ length: D }, (_, d) => w.wte[id * D + d] + w.wpe[t * D + d]))
  const states = [x.map(r => [...r])]
  for (const b of w.blocks) {
    const qkv = x.map(r => matvec(layerNorm(r, b.ln1Gain, b.ln1Bias), b.attnW, b.attnB, D, 3 * D))
    const attn = x.map(() => new Array<number>(D).fill(0))
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const scores: number[] = []
        for (let j = 0; j <= i; j++) {
          let s = 0
          for (let d = 0; d < dh; d++) s += qkv[i][h * dh + d] * qkv[j][D + h * dh + d]
          scores.push(s / Math.sqrt(dh))
        }
        const max = Math.max(...scores)
        const e = scores.map(s => Math.exp(s - max))
        const z = e.reduce((a, c) => a + c, 0)
        for (let j = 0; j <= i; j++)
          for (let d = 0; d < dh; d++) attn[i][h * dh + d] += (e[j] / z) * qkv[j][2 * D + h * dh + d]
      }
    }
    x = x.map((r, t) => {
      const a = matvec(attn[t], b.attnProjW, b.attnProjB, D, D)
      return r.map((v, d) => v + a[d])
    })
    x = x.map(r => {
      const hdn = matvec(layerNorm(r, b.ln2Gain, b.ln2Bias), b.fcW, b.fcB, D, dMlp).map(gelu)
      const m = matvec(hdn, b.mlpProjW, b.mlpProjB, dMlp, D)
      return r.map((v, d) => v + m[d])
    })
    states.push(x.map(r => [...r]))
  }
  return states
}

/** Right-pads sequences into one batch and runs every hidden-state output. */
async function runBatch(session: ort.InferenceSession, seqs: number[][]): Promise<{ T: number; out: Float32Array[] }> {
  const B = seqs.length
  const T = Math.max(...seqs.map(s => s.length))
  const ids = new BigInt64Array(B * T)
  const mask = new BigInt64Array(B * T)
  seqs.forEach((s, b) => {
    s.forEach((id, t) => {
      ids[b * T + t] = BigInt(id)
      mask[b * T + t] = 1n
    })
  })
  const result = await session.run({
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', mask, [B, T])
  })
  const out: Float32Array[] = []
  for (let i = 0; ; i++) {
    const tensor = result[`hidden_states.${i}`]
    if (!tensor) break
    assert.deepEqual(tensor.dims, [B, T, TINY.dModel])
    out.push(tensor.data as Float32Array)
  }
  return { T, out }
}

function maxAbsDiffRow(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, D: number): number {
  let m = 0
  for (let d = 0; d < D; d++) m = Math.max(m, Math.abs(a[aOffset + d] - b[bOffset + d]))
  return m
}

const session = await ort.InferenceSession.create(buildReaderModel(TINY), { intraOpNumThreads: 1 })

test('padded batch matches a float64 reference forward pass on every layer', async () => {
  const weights = generateReaderWeights(TINY)
  const seqs = [
    [1, 7, 23, 49, 3, 3, 11, 0, 42, 5, 17, 8],
    [1, 30, 2],
    [1, 4, 4, 9, 12, 48, 0]
  ]
  const { T, out } = await runBatch(session, seqs)
  assert.equal(out.length, TINY.nLayers + 1)
  let worst = 0
  seqs.forEach((s, b) => {
    const ref = referenceForward(TINY, weights, s)
    for (let layer = 0; layer <= TINY.nLayers; layer++) {
      for (let t = 0; t < s.length; t++) {
        for (let d = 0; d < TINY.dModel; d++) {
          worst = Math.max(worst, Math.abs(out[layer][(b * T + t) * TINY.dModel + d] - ref[layer][t][d]))
        }
      }
    }
  })
  assert.ok(worst < 1e-4, `max deviation from reference ${worst}`)
})

test('blocks change the residual stream (the reference comparison is not trivially passing)', async () => {
  const { out } = await runBatch(session, [[1, 2, 3, 4, 5]])
  const D = TINY.dModel
  assert.ok(maxAbsDiffRow(out[0], 4 * D, out[2], 4 * D, D) > 1e-3)
})

test('causality: changing a later token leaves earlier hidden states unchanged', async () => {
  const a = [1, 9, 14, 27, 33, 8, 2, 40]
  const b = [...a]
  b[5] = 19
  const { out } = await runBatch(session, [a, b])
  const D = TINY.dModel
  const T = a.length
  for (let layer = 0; layer <= TINY.nLayers; layer++) {
    for (let t = 0; t < T; t++) {
      const diff = maxAbsDiffRow(out[layer], t * D, out[layer], (T + t) * D, D)
      if (t < 5) assert.ok(diff < 1e-6, `layer ${layer} position ${t} changed by ${diff}`)
      else if (layer > 0 || t === 5) assert.ok(diff > 1e-6, `layer ${layer} position ${t} should see the change`)
    }
  }
})

test('right padding does not change the unpadded rows', async () => {
  const short = [1, 12, 31, 5]
  const long = [1, 3, 6, 10, 15, 21, 28, 36, 45, 2, 7, 13, 20]
  const alone = await runBatch(session, [short])
  const padded = await runBatch(session, [short, long])
  const D = TINY.dModel
  for (let layer = 0; layer <= TINY.nLayers; layer++) {
    for (let t = 0; t < short.length; t++) {
      const diff = maxAbsDiffRow(alone.out[layer], t * D, padded.out[layer], t * D, D)
      assert.ok(diff < 1e-6, `layer ${layer} position ${t} changed by ${diff} under padding`)
    }
  }
})

test('weights follow the GPT-2 init scales and are reproducible', () => {
  const spec = { ...TINY, vocab: 2000, dModel: 64, nHeads: 4, dMlp: 256, nLayers: 4 }
  const w = generateReaderWeights(spec)
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length)
  assert.ok(Math.abs(std(w.wte) - 0.02) < 0.0005, `wte std ${std(w.wte)}`)
  assert.ok(
    Math.abs(std(w.blocks[0].mlpProjW) - 0.02 / Math.sqrt(8)) < 0.0003,
    `c_proj std ${std(w.blocks[0].mlpProjW)}`
  )
  assert.ok(w.wte.every(v => Math.abs(v) <= 0.02 * Math.sqrt(3)))
  assert.deepEqual(w.blocks[1].ln1Gain, new Float32Array(64).fill(1))
  assert.notDeepEqual(w.blocks[0].attnW.subarray(0, 64), w.blocks[1].attnW.subarray(0, 64))
  assert.equal(sha256Hex(buildReaderModel(TINY)), sha256Hex(buildReaderModel({ ...TINY })))
  assert.notEqual(sha256Hex(buildReaderModel(TINY)), sha256Hex(buildReaderModel({ ...TINY, seed: 8 })))
  assert.notEqual(readerBuildKey(TINY), readerBuildKey({ ...TINY, seed: 8 }))
})

test('the PRNG gives uniforms in [0, 1) with the right mean', () => {
  const next = xoshiro128(123)
  let sum = 0
  for (let i = 0; i < 100_000; i++) {
    const u = next()
    assert.ok(u >= 0 && u < 1)
    sum += u
  }
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.005)
})
