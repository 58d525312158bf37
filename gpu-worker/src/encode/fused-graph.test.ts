/** @module Tests of the composed reader + SAE + pooling graph against an independent float64 reference. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import onnxPkg from 'onnx-proto'
import type { PoolingMethod } from '@latentbase/shared/contract/dataset'
import {
  buildPooledGraph,
  buildReaderOnlyGraph,
  buildTokenActivationsGraph,
  maxOverTokens,
  type ComposedGraph,
  type ReaderOutputRef
} from './fused-graph.ts'
import { loadSaeLens } from './sae.ts'
import { GraphBuilder, valueInfo } from './graph-builder.ts'
import type { SaeWeights } from './architectures/index.ts'
import {
  buildTinyReader,
  referenceDocument,
  referenceHidden,
  referencePool,
  writeTinySae,
  type ReferenceDoc,
  type TinyReader,
  type TinySae,
  type TinySaeSpec
} from './test-fixtures.ts'

const VOCAB = 64
const D = 16
const S = 48
const HUGE = 7
const BOS = 1
const EOS = 2
const PAD = 0
const T = 9
// Three right-padded documents; doc 0 holds the planted huge-norm token.
const IDS = [
  [BOS, 5, 9, 12, 3, HUGE, 20, 11, 4],
  [BOS, 14, 15, 16, EOS, PAD, PAD, PAD, PAD],
  [BOS, 30, 31, 32, 33, 34, 35, 36, PAD]
]
const ATTENTION = IDS.map(row =>
  row.map((_, t) => (row === IDS[1] ? (t < 5 ? 1 : 0) : row === IDS[2] ? (t < 8 ? 1 : 0) : 1))
)
const POOL = IDS.map((row, b) => row.map((id, t) => (ATTENTION[b][t] && id !== BOS && id !== EOS ? 1 : 0)))
const B = IDS.length
// 23 tokens: a prime above 16, so the argmax over tokens takes blocks of one token (the one-pass ArgMax).
const LONG_LENGTHS = [23, 17, 22]
const LONG_IDS = LONG_LENGTHS.map((len, r) =>
  Array.from({ length: 23 }, (_, t) =>
    t === 0
      ? BOS
      : t >= len
        ? PAD
        : r === 1 && t === len - 1
          ? EOS
          : r === 0 && t === 10
            ? HUGE
            : 8 + ((t * 13 + r * 5) % 55)
  )
)
const LONG_ATTENTION = LONG_IDS.map((row, r) => row.map((_, t) => (t < LONG_LENGTHS[r] ? 1 : 0)))
const LONG_POOL = LONG_IDS.map((row, r) =>
  row.map((id, t) => (LONG_ATTENTION[r][t] && id !== BOS && id !== EOS ? 1 : 0))
)
/** The two batches the pooling tests run: 9 tokens (one block of 9) and 23 (23 blocks of 1). */
const BATCHES = [
  { ids: IDS, attention: ATTENTION, pool: POOL },
  { ids: LONG_IDS, attention: LONG_ATTENTION, pool: LONG_POOL }
]

let dir: string
let reader: TinyReader
const saeCache = new Map<string, { weights: SaeWeights; ref: TinySae }>()

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-fused-'))
  reader = buildTinyReader({ vocab: VOCAB, d: D, hugeTokens: [HUGE], hugeFactor: 1000 })
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function sae(
  spec: Omit<TinySaeSpec, 'dIn' | 'dSae'>,
  dtype: 'F32' | 'F16' = 'F32'
): Promise<{ weights: SaeWeights; ref: TinySae }> {
  const key = JSON.stringify([spec, dtype])
  let hit = saeCache.get(key)
  if (!hit) {
    const folder = join(dir, `sae-${saeCache.size}`)
    const ref = await writeTinySae(folder, { dIn: D, dSae: S, ...spec }, dtype)
    hit = { weights: await loadSaeLens(folder), ref }
    saeCache.set(key, hit)
  }
  return hit
}

function feeds(
  graph: ComposedGraph,
  ids = IDS,
  attention = ATTENTION,
  pool: number[][] | null = POOL
): Record<string, Tensor> {
  const b = ids.length
  const t = ids[0].length
  const out: Record<string, Tensor> = {}
  for (const input of graph.readerInputs) {
    const src = input.name === 'input_ids' ? ids : attention
    out[input.name] = new Tensor('int64', BigInt64Array.from(src.flat(), BigInt), [b, t])
  }
  if (pool) out.pool_mask = new Tensor('float32', Float32Array.from(pool.flat()), [b, t])
  return out
}

async function run(graph: ComposedGraph, f: Record<string, Tensor>) {
  const session = await InferenceSession.create(graph.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 })
  try {
    return await session.run(f)
  } finally {
    await session.release()
  }
}

function references(
  ref: TinySae,
  layer: 0 | 1,
  ratio: number,
  center = false,
  ids = IDS,
  attention = ATTENTION,
  pool = POOL
): ReferenceDoc[] {
  return ids.map((row, b) => referenceDocument(reader, layer, ref, row, attention[b], pool[b], ratio, center))
}

/** Compare pooled output and argmax with the reference, within 1e-4 of each latent's largest activation. */
function assertMatches(out: InferenceSession.ReturnType, docs: ReferenceDoc[], method: PoolingMethod, label: string) {
  const pooled = out.pooled.data as Float32Array
  const argmax = out.argmax.data as BigInt64Array
  const outliers = out.outliers.data as BigInt64Array
  assert.deepEqual(out.pooled.dims, [docs.length, S], `${label}: pooled dims`)
  // Scale of each latent: its largest pooled-token activation over the batch (floor for dead latents).
  const scale = new Float64Array(S).fill(1e-3)
  for (const doc of docs)
    for (let t = 0; t < doc.keep.length; t++)
      if (doc.keep[t]) for (let s = 0; s < S; s++) scale[s] = Math.max(scale[s], doc.acts[t][s])
  let active = 0
  docs.forEach((doc, b) => {
    assert.equal(Number(outliers[b]), doc.outliers, `${label}: outliers of doc ${b}`)
    const ref = referencePool(doc, method, S)
    for (let s = 0; s < S; s++) {
      const got = pooled[b * S + s]
      const want = ref.pooled[s]
      if (method === 'count' || method === 'binary') {
        assert.equal(got, want, `${label}: doc ${b} latent ${s} ${method}`)
      } else {
        const tol = 1e-4 * scale[s] * (method === 'sum' ? T : 1)
        assert.ok(
          Math.abs(got - want) <= tol,
          `${label}: doc ${b} latent ${s}: got ${got}, reference ${want} (tol ${tol})`
        )
      }
      if (ref.max[s] > 1e-4 * scale[s]) {
        active++
        const p = Number(argmax[b * S + s])
        assert.ok(
          doc.keep[p] === 1,
          `${label}: doc ${b} latent ${s}: argmax ${p} points at a token left out of pooling`
        )
        assert.ok(
          doc.acts[p][s] >= ref.max[s] - 1e-4 * scale[s],
          `${label}: doc ${b} latent ${s}: argmax ${p} is not the max (reference ${ref.argmax[s]})`
        )
      }
    }
  })
  assert.ok(active > S / 4, `${label}: too few active latents (${active}) for the comparison to mean anything`)
}

const ARCHS: Array<Omit<TinySaeSpec, 'dIn' | 'dSae'>> = [
  { architecture: 'standard' },
  { architecture: 'jumprelu' },
  { architecture: 'topk', k: 6 }
]

test('each architecture (F32) pools like the float64 reference, with padding, BOS and the outlier masked', async () => {
  for (const spec of ARCHS) {
    const { weights, ref } = await sae(spec)
    const graph = buildPooledGraph(reader.bytes, weights, {
      output: 'hidden_states.1',
      method: 'max',
      outlierNormRatio: 100
    })
    for (const { ids, attention, pool } of BATCHES) {
      const out = await run(graph, feeds(graph, ids, attention, pool))
      const docs = references(ref, 1, 100, false, ids, attention, pool)
      assertMatches(out, docs, 'max', `${spec.architecture}, ${ids[0].length} tokens`)
      const argmax = out.argmax.data as BigInt64Array
      for (let i = 0; i < argmax.length; i++) assert.ok(argmax[i] < BigInt(ids[0].length), 'argmax inside the batch')
    }
  }
})

test('every pooling method matches the reference (F16 SAE weights, standard and topk)', async () => {
  for (const spec of [ARCHS[0], ARCHS[2]]) {
    const { weights, ref } = await sae(spec, 'F16')
    assert.equal(weights.sourceDtype, 'F16')
    const docs = references(ref, 1, 100)
    for (const method of ['max', 'mean', 'sum', 'binary', 'count'] as const) {
      const graph = buildPooledGraph(reader.bytes, weights, {
        output: 'hidden_states.1',
        method,
        outlierNormRatio: 100
      })
      assertMatches(await run(graph, feeds(graph)), docs, method, `${spec.architecture}/${method}`)
    }
  }
})

test('input normalizations, b_dec application, decoder-norm rescaling and centring follow the formulas', async () => {
  const variants: Array<[Omit<TinySaeSpec, 'dIn' | 'dSae'>, boolean]> = [
    [{ architecture: 'standard', normalizeActivations: 'constant_norm_rescale' }, false],
    [{ architecture: 'jumprelu', normalizeActivations: 'layer_norm' }, false],
    [{ architecture: 'topk', k: 5, rescaleActsByDecoderNorm: true }, false],
    [{ architecture: 'standard', applyBDecToInput: false }, false],
    [{ architecture: 'standard' }, true]
  ]
  for (const [spec, center] of variants) {
    const { weights, ref } = await sae(spec)
    const graph = buildPooledGraph(reader.bytes, weights, {
      output: 'hidden_states.1',
      preprocess: center ? 'center' : 'none',
      method: 'max',
      outlierNormRatio: 100
    })
    assertMatches(
      await run(graph, feeds(graph)),
      references(ref, 1, 100, center),
      'max',
      `${JSON.stringify(spec)} center=${center}`
    )
  }
})

test('a planted huge-norm token is removed from pooling and counted; it would have changed the result', async () => {
  const { weights, ref } = await sae(ARCHS[0])
  const withMask = buildPooledGraph(reader.bytes, weights, {
    output: 'hidden_states.1',
    method: 'max',
    outlierNormRatio: 100
  })
  const noMask = buildPooledGraph(reader.bytes, weights, {
    output: 'hidden_states.1',
    method: 'max',
    outlierNormRatio: 1e30
  })
  const a = await run(withMask, feeds(withMask))
  const b = await run(noMask, feeds(noMask))
  assert.deepEqual(Array.from(a.outliers.data as BigInt64Array, Number), [1, 0, 0])
  assert.deepEqual(Array.from(b.outliers.data as BigInt64Array, Number), [0, 0, 0])
  const hugeAt = IDS[0].indexOf(HUGE)
  const argA = a.argmax.data as BigInt64Array
  const argB = b.argmax.data as BigInt64Array
  for (let s = 0; s < S; s++)
    assert.notEqual(Number(argA[s]), hugeAt, `latent ${s} still pooled from the outlier token`)
  // Without the mask the outlier dominates many latents of doc 0, and the graph agrees with that reference too.
  let dominated = 0
  for (let s = 0; s < S; s++) if (Number(argB[s]) === hugeAt) dominated++
  assert.ok(dominated > 5, `the outlier token should dominate some latents without masking (${dominated})`)
  assertMatches(b, references(ref, 1, 1e30), 'max', 'no outlier mask')
  // Documents 1 and 2 have no outlier: both graphs agree on them exactly.
  const pa = a.pooled.data as Float32Array
  const pb = b.pooled.data as Float32Array
  for (let i = S; i < B * S; i++) assert.equal(pa[i], pb[i])
})

test('padding and special tokens never reach the pool; a row with nothing to pool gives zeros', async () => {
  const { weights, ref } = await sae(ARCHS[0])
  const graph = buildPooledGraph(reader.bytes, weights, {
    output: 'hidden_states.0',
    method: 'max',
    outlierNormRatio: 100
  })
  // Row 1: only BOS + padding would pool if unmasked; padding embeds token 0, which activates latents.
  const pool = POOL.map(r => r.slice())
  pool[1] = pool[1].map(() => 0)
  const out = await run(graph, feeds(graph, IDS, ATTENTION, pool))
  const pooled = out.pooled.data as Float32Array
  for (let s = 0; s < S; s++) assert.equal(pooled[S + s], 0, `latent ${s} of an all-masked row`)
  const docs = references(ref, 0, 100, false, IDS, ATTENTION, pool)
  assertMatches(out, docs, 'max', 'layer 0 with a masked row')
  // Unmasking everything changes the result: the masking is what the test sees.
  const all = IDS.map(r => r.map(() => 1))
  const loose = await run(graph, feeds(graph, IDS, ATTENTION, all))
  const lp = loose.pooled.data as Float32Array
  let differs = 0
  for (let s = 0; s < S; s++) if (Math.abs(lp[S + s] - pooled[S + s]) > 1e-3) differs++
  assert.ok(differs > 0)
})

test('a stacked [L, B, T, D] output with an index equals the named layer output', async () => {
  const { weights } = await sae(ARCHS[2])
  const results = []
  for (const output of [{ name: 'hidden_states', index: 1 }, 'hidden_states.1'] as ReaderOutputRef[]) {
    const graph = buildPooledGraph(reader.bytes, weights, { output, method: 'sum', outlierNormRatio: 100 })
    results.push(await run(graph, feeds(graph)))
  }
  assert.deepEqual(
    Array.from(results[0].pooled.data as Float32Array),
    Array.from(results[1].pooled.data as Float32Array)
  )
  assert.deepEqual(
    Array.from(results[0].argmax.data as BigInt64Array),
    Array.from(results[1].argmax.data as BigInt64Array)
  )
  const { weights: w0 } = await sae(ARCHS[0])
  const g0 = buildPooledGraph(reader.bytes, w0, {
    output: { name: 'hidden_states', index: 0 },
    method: 'max',
    outlierNormRatio: 100
  })
  assert.ok(g0.ops.includes('Gather'))
  assert.throws(
    () =>
      buildPooledGraph(reader.bytes, w0, {
        output: { name: 'hidden_states', index: 2 },
        method: 'max',
        outlierNormRatio: 100
      }),
    /index is 2 but "hidden_states" stacks only 2 layers/
  )
  assert.throws(
    () =>
      buildPooledGraph(reader.bytes, w0, {
        output: { name: 'hidden_states.1', index: 0 },
        method: 'max',
        outlierNormRatio: 100
      }),
    /rank 3, not a stacked/
  )
})

test('pruning: the unused branch and its weights are gone; an unused attention mask is no longer an input', async () => {
  const { weights } = await sae(ARCHS[0])
  const g1 = buildPooledGraph(reader.bytes, weights, {
    output: 'hidden_states.1',
    method: 'max',
    outlierNormRatio: 100
  })
  assert.ok(!g1.nodeNames.includes('unused_big_matmul') && !g1.nodeNames.includes('unused_relu'))
  assert.ok(!g1.initializerNames.includes('w_big'))
  assert.ok(g1.nodeNames.includes('mm'))
  assert.deepEqual(
    g1.readerInputs.map(i => i.name),
    ['input_ids', 'attention_mask']
  )
  const g0 = buildPooledGraph(reader.bytes, weights, {
    output: 'hidden_states.0',
    method: 'max',
    outlierNormRatio: 100
  })
  assert.deepEqual(g0.readerInputs, [{ name: 'input_ids', type: 'int64' }])
  assert.ok(!g0.nodeNames.includes('mm') && !g0.initializerNames.includes('w'))
  // The composed model is much smaller than the reader because w_big (16 x 512 floats) is dropped.
  assert.ok(g0.bytes.byteLength < reader.bytes.byteLength + S * D * 4 + 8192 - 16 * 512 * 4 + 4096)
  // Its outputs are only the pooled values: no dense per-token SAE output leaves the graph.
  assert.deepEqual(g0.outputs, ['pooled', 'argmax', 'outliers'])
  const model = onnxPkg.onnx.ModelProto.decode(g0.bytes)
  const outputs = model.graph?.output ?? []
  assert.deepEqual(
    outputs.map(o => o.name),
    ['pooled', 'argmax', 'outliers']
  )
  assert.ok(outputs.every(o => (o.type?.tensorType?.shape?.dim?.length ?? 0) <= 2))
})

test('readers at opset 13 and 18 both compose (reduction axes as attribute vs input)', async () => {
  const { weights, ref } = await sae(ARCHS[2])
  for (const opset of [13, 18]) {
    const r = buildTinyReader({ vocab: VOCAB, d: D, hugeTokens: [HUGE], hugeFactor: 1000, opset })
    const graph = buildPooledGraph(r.bytes, weights, {
      output: 'hidden_states.1',
      preprocess: 'center',
      method: 'mean',
      outlierNormRatio: 100
    })
    assert.equal(graph.opset, opset)
    const docs = IDS.map((row, b) => referenceDocument(r, 1, ref, row, ATTENTION[b], POOL[b], 100, true))
    assertMatches(await run(graph, feeds(graph)), docs, 'mean', `opset ${opset}`)
  }
  const old = buildTinyReader({ vocab: VOCAB, d: D, opset: 12 })
  assert.throws(
    () => buildPooledGraph(old.bytes, weights, { output: 'hidden_states.1', method: 'max', outlierNormRatio: 100 }),
    /opset 12 is older than 13/
  )
})

test('token activations graph returns per-token activations, norms and the pool mask after outliers', async () => {
  const { weights, ref } = await sae(ARCHS[1])
  const graph = buildTokenActivationsGraph(reader.bytes, weights, { output: 'hidden_states.1', outlierNormRatio: 100 })
  const out = await run(graph, feeds(graph))
  const acts = out.activations.data as Float32Array
  const norms = out.norms.data as Float32Array
  const keep = out.pool_mask_out.data as Float32Array
  assert.deepEqual(out.activations.dims, [B, T, S])
  const docs = references(ref, 1, 100)
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      assert.equal(keep[b * T + t], docs[b].keep[t], `keep ${b},${t}`)
      const n = docs[b].norms[t]
      assert.ok(Math.abs(norms[b * T + t] - n) <= 1e-5 * Math.max(1, n), `norm ${b},${t}`)
      const scale = Math.max(1e-3, ...docs[b].acts[t])
      for (let s = 0; s < S; s++) {
        assert.ok(
          Math.abs(acts[(b * T + t) * S + s] - docs[b].acts[t][s]) <= 1e-4 * scale * (n > 1e3 ? 10 : 1),
          `act ${b},${t},${s}`
        )
      }
    }
  }
  assert.equal(keep[IDS[0].indexOf(HUGE)], 0)
})

test('token activations graph with selectLatents returns only the requested latents, in order', async () => {
  const { weights } = await sae(ARCHS[1])
  const full = buildTokenActivationsGraph(reader.bytes, weights, { output: 'hidden_states.1', outlierNormRatio: 100 })
  const picked = buildTokenActivationsGraph(reader.bytes, weights, {
    output: 'hidden_states.1',
    outlierNormRatio: 100,
    selectLatents: true
  })
  const all = (await run(full, feeds(full))).activations.data as Float32Array
  const latentIds = [S - 1, 0, 2]
  const inputs = {
    ...feeds(picked),
    latent_ids: new Tensor('int64', BigInt64Array.from(latentIds, BigInt), [latentIds.length])
  }
  const out = await run(picked, inputs)
  assert.deepEqual(out.activations.dims, [B, T, latentIds.length])
  const sel = out.activations.data as Float32Array
  for (let bt = 0; bt < B * T; bt++) {
    latentIds.forEach((l, j) => {
      assert.equal(sel[bt * latentIds.length + j], all[bt * S + l], `token ${bt}, latent ${l}`)
    })
  }
})

test('reader-only graph sums the chosen hidden states', async () => {
  const graph = buildReaderOnlyGraph(reader.bytes, { output: 'hidden_states.1' })
  assert.deepEqual(graph.outputs, ['hidden_sum'])
  const out = await run(graph, feeds(graph, IDS, ATTENTION, null))
  const sums = out.hidden_sum.data as Float32Array
  for (let b = 0; b < B; b++) {
    let want = 0
    let mag = 0
    for (let t = 0; t < T; t++)
      for (const v of referenceHidden(reader, 1, IDS[b][t], ATTENTION[b][t])) {
        want += v
        mag += Math.abs(v)
      }
    assert.ok(Math.abs(sums[b] - want) <= 1e-5 * mag, `doc ${b}: ${sums[b]} vs ${want}`)
  }
})

test('configuration errors name what is wrong', async () => {
  const { weights } = await sae(ARCHS[0])
  assert.throws(
    () => buildPooledGraph(reader.bytes, weights, { output: 'hidden_states.7', method: 'max', outlierNormRatio: 100 }),
    /no value named "hidden_states.7" \(graph outputs: hidden_states.0, hidden_states.1, hidden_states, logits\)/
  )
  const wide = buildTinyReader({ vocab: VOCAB, d: D * 2 })
  assert.throws(
    () => buildPooledGraph(wide.bytes, weights, { output: 'hidden_states.1', method: 'max', outlierNormRatio: 100 }),
    /d_model 32 but the SAE's d_in is 16/
  )
  assert.throws(
    () =>
      buildPooledGraph(new Uint8Array([1, 2, 3, 4]), weights, { output: 'x', method: 'max', outlierNormRatio: 100 }),
    /reader model/
  )
  assert.throws(
    () =>
      buildPooledGraph(reader.bytes, weights, {
        output: 'hidden_states.1',
        method: 'median' as PoolingMethod,
        outlierNormRatio: 100
      }),
    /pooling method "median"/
  )
})

test('top-example capture returns the selected (row, latent) pairs and the activations around each argmax, as the per-token graph has them', async () => {
  const HALF = 2
  const W = 2 * HALF + 1
  const { weights: standard } = await sae(ARCHS[0])
  // A gated SAE from the standard weights plus a magnitude path (the tiny fixtures write no gated SAE).
  const gated: SaeWeights = {
    ...standard,
    architecture: 'gated',
    rMag: Float32Array.from({ length: S }, (_, s) => 0.3 * Math.sin(s)),
    bMag: Float32Array.from({ length: S }, (_, s) => 0.1 * Math.cos(s))
  }
  const cases: Array<[string, SaeWeights, PoolingMethod]> = [
    ['standard/max', standard, 'max'],
    ['jumprelu/max', (await sae(ARCHS[1])).weights, 'max'],
    ['topk/max', (await sae(ARCHS[2])).weights, 'max'],
    ['standard/mean', standard, 'mean'],
    ['topk/sum', (await sae(ARCHS[2])).weights, 'sum'],
    ['gated/max', gated, 'max']
  ]
  for (const [label, weights, method] of cases) {
    const graph = buildPooledGraph(reader.bytes, weights, {
      output: 'hidden_states.1',
      method,
      outlierNormRatio: 100,
      examples: { halfWindow: HALF }
    })
    const perToken = buildTokenActivationsGraph(reader.bytes, weights, {
      output: 'hidden_states.1',
      outlierNormRatio: 100
    })
    for (const { ids, attention, pool } of BATCHES) {
      const T = ids[0].length
      const tok = await run(perToken, feeds(perToken, ids, attention, pool))
      const acts = tok.activations.data as Float32Array
      const keep = tok.pool_mask_out.data as Float32Array
      // Thresholds that let some latents through and hold others back; row 2 is flagged to return all it has.
      const thr = Float32Array.from({ length: S }, (_, s) => (s % 3 === 0 ? 0 : s % 3 === 1 ? 0.5 : Infinity))
      const all = Float32Array.from([0, 0, 1])
      const out = await run(graph, {
        ...feeds(graph, ids, attention, pool),
        example_threshold: new Tensor('float32', thr, [S]),
        example_all: new Tensor('float32', all, [B])
      })
      const pooled = out.pooled.data as Float32Array
      const argmax = out.argmax.data as BigInt64Array
      const index = Array.from(out.example_index.data as BigInt64Array, Number)
      const windows = out.example_activations.data as Float32Array
      const want: string[] = []
      let positive = 0
      for (let b = 0; b < B; b++)
        for (let s = 0; s < S; s++) {
          if (pooled[b * S + s] > 0) positive++
          if (pooled[b * S + s] > 0 && (pooled[b * S + s] >= thr[s] || all[b] > 0)) want.push(`${b},${s}`)
        }
      const got = Array.from({ length: index.length / 2 }, (_, n) => `${index[2 * n]},${index[2 * n + 1]}`)
      assert.deepEqual(got, want, `${label}, ${T} tokens: selected pairs`)
      assert.ok(
        want.length > 5 && want.length < positive,
        `${label}, ${T} tokens: ${want.length} of ${positive} active pairs selected: the test should select some and leave some`
      )
      assert.deepEqual(out.example_activations.dims, [want.length, W])
      for (let n = 0; n < got.length; n++) {
        const [b, s] = [index[2 * n], index[2 * n + 1]]
        const c = Number(argmax[b * S + s])
        let scale = 1e-3
        for (let t = 0; t < T; t++) scale = Math.max(scale, Math.abs(acts[(b * T + t) * S + s]))
        for (let o = -HALF; o <= HALF; o++) {
          const t = Math.min(Math.max(c + o, 0), T - 1)
          const expected = keep[b * T + t] > 0 ? acts[(b * T + t) * S + s] : 0
          const value = windows[n * W + o + HALF]
          assert.ok(
            Math.abs(value - expected) <= 1e-4 * scale,
            `${label}, ${T} tokens: row ${b} latent ${s} token ${t}: ${value} vs per-token ${expected}`
          )
        }
        if (method === 'max')
          assert.ok(
            Math.abs(windows[n * W + HALF] - pooled[b * S + s]) <= 1e-6 * scale,
            `${label}, ${T} tokens: the window's centre is the pooled max`
          )
      }
    }
  }
  // Nothing above the thresholds: an empty, well-shaped answer.
  const graph = buildPooledGraph(reader.bytes, standard, {
    output: 'hidden_states.1',
    method: 'max',
    outlierNormRatio: 100,
    examples: { halfWindow: HALF }
  })
  const none = await run(graph, {
    ...feeds(graph),
    example_threshold: new Tensor('float32', new Float32Array(S).fill(Infinity), [S]),
    example_all: new Tensor('float32', new Float32Array(B), [B])
  })
  assert.deepEqual(none.example_index.dims, [0, 2])
  assert.deepEqual(none.example_activations.dims, [0, W])
  // Nothing pooled at all (every token masked): no pair fires, no argmax is searched, and the answer is all zeros.
  for (const dtype of ['float32', 'int8'] as const) {
    const empty = buildPooledGraph(reader.bytes, standard, {
      output: 'hidden_states.1',
      method: 'max',
      outlierNormRatio: 100,
      saeDtype: dtype,
      examples: { halfWindow: HALF }
    })
    const out = await run(empty, {
      ...feeds(
        empty,
        LONG_IDS,
        LONG_ATTENTION,
        LONG_POOL.map(row => row.map(() => 0))
      ),
      example_threshold: new Tensor('float32', new Float32Array(S), [S]),
      example_all: new Tensor('float32', new Float32Array(B).fill(1), [B])
    })
    assert.ok(
      (out.pooled.data as Float32Array).every(v => v === 0),
      `${dtype}: nothing pooled`
    )
    assert.ok(
      (out.argmax.data as BigInt64Array).every(v => v === 0n),
      `${dtype}: no argmax`
    )
    assert.deepEqual(out.example_activations.dims, [0, W])
  }
})

test('max and argmax over tokens in blocks: the first maximal token for every length (odd, even, multiples of 16), ties included, where the mask asks', async () => {
  const { onnx } = onnxPkg
  const B = 2
  const L = 5
  let seed = 7
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32
  for (const opset of [17, 18]) {
    const b = new GraphBuilder(opset)
    const best = maxOverTokens(b, 'x')
    // the argmax of the pairs whose max is positive, as pooling asks for those whose latent fired
    const { argmax } = best.argmaxWhere(b.op('Greater', [best.max, b.zero()]))
    b.nameLast(best.max, 'max')
    b.nameLast(argmax, 'argmax')
    const model = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: 'max_over_tokens',
        node: b.nodes,
        initializer: b.initializers,
        input: [valueInfo('x', onnx.TensorProto.DataType.FLOAT, ['batch', 'tokens', L])],
        output: [
          valueInfo('max', onnx.TensorProto.DataType.FLOAT, ['batch', L]),
          valueInfo('argmax', onnx.TensorProto.DataType.INT64, ['batch', L])
        ]
      }
    }).finish()
    const session = await InferenceSession.create(model)
    for (const tokens of [...Array.from({ length: 40 }, (_, i) => i + 1), 48, 64, 96, 100, 256]) {
      // Few distinct values, so most columns have several maximal tokens; masked tokens at -1e30.
      const x = Float32Array.from({ length: B * tokens * L }, () => {
        const r = rand()
        return r < 0.1 ? -1e30 : Math.floor(r * 4) - 1
      })
      const out = await session.run({ x: new Tensor('float32', x, [B, tokens, L]) })
      for (let i = 0; i < B; i++)
        for (let l = 0; l < L; l++) {
          let best = 0
          for (let t = 1; t < tokens; t++) if (x[(i * tokens + t) * L + l] > x[(i * tokens + best) * L + l]) best = t
          const where = `opset ${opset}, T ${tokens}, row ${i}, latent ${l}`
          const max = x[(i * tokens + best) * L + l]
          assert.equal((out.max.data as Float32Array)[i * L + l], max, where)
          assert.equal(Number((out.argmax.data as BigInt64Array)[i * L + l]), max > 0 ? best : 0, where)
        }
    }
    await session.release()
  }
})
