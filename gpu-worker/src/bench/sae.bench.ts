/** @module `npm run bench:sae`: SAE encode + pooling throughput at real SAE sizes, beside a plain matrix product of the same size (the limit). */
/**
 * For each size (d_in x d_sae), one run of onnxruntime on random weights:
 *  - `matmul`: X [B, T, d_in] x W [d_in, d_sae], then a max over tokens (so both graphs return [B, d_sae] and the
 *    host copy is the same): the floating-point work any SAE encode must do;
 *  - the production graph (buildPooledGraph: SAE encode with the architecture's activation, masked max pooling,
 *    argmax, outlier mask) behind an identity reader, for TopK and JumpReLU, and TopK with the float16 product
 *    (the GPU default).
 * Tokens per second and the ratio to the plain product are printed. The CUDA provider is used when
 * LATENTBASE_DEVICE=cuda and available (same table on a GPU).
 *
 *   npm run bench:sae [-- --sizes 768x24576,4096x65536 --batch 4 --tokens 128 --runs 3]
 */
import { parseArgs } from 'node:util'
import { availableParallelism } from 'node:os'
import onnxPkg from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import ort from 'onnxruntime-node'
import { mulberry32 } from '@latentbase/shared/util/random'
import { buildPooledGraph } from '../encode/fused-graph.ts'
import { requestedProviders } from '../encode/runtime.ts'
import type { SaeWeights } from '../encode/architectures/index.ts'

const { onnx } = onnxPkg
const DT = onnx.TensorProto.DataType

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '768x24576,4096x65536' },
    batch: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    k: { type: 'string', default: '64' }
  }
})
const B = Number(values.batch),
  T = Number(values.tokens),
  RUNS = Number(values.runs),
  K = Number(values.k)
const sizes = values.sizes!.split(',').map(s => s.split('x').map(Number) as [number, number])

const vi = (name: string, dims: (number | string)[]): Onnx.IValueInfoProto => ({
  name,
  type: {
    tensorType: {
      elemType: DT.FLOAT,
      shape: { dim: dims.map(d => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
    }
  }
})
const f32 = (name: string, data: Float32Array, dims: number[]): Onnx.ITensorProto => ({
  name,
  dataType: DT.FLOAT,
  dims,
  rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
})

function model(graph: Onnx.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'latentbase-bench',
      graph
    })
  ).finish()
}

/** A reader whose chosen layer is its input: the SAE graph then runs alone. */
function identityReader(d: number): Uint8Array {
  return model({
    name: 'identity_reader',
    node: [{ opType: 'Identity', input: ['hidden_in'], output: ['hidden_states'], name: 'identity' }],
    input: [vi('hidden_in', ['batch', 'tokens', d])],
    output: [vi('hidden_states', ['batch', 'tokens', d])]
  })
}

function matmulGraph(w: Float32Array, d: number, s: number): Uint8Array {
  return model({
    name: 'plain_matmul',
    node: [
      { opType: 'MatMul', input: ['hidden_in', 'W'], output: ['h'], name: 'matmul' },
      {
        opType: 'ReduceMax',
        input: ['h'],
        output: ['pooled'],
        name: 'max_over_tokens',
        attribute: [
          { name: 'axes', ints: [1], type: onnx.AttributeProto.AttributeType.INTS },
          { name: 'keepdims', i: 0, type: onnx.AttributeProto.AttributeType.INT }
        ]
      }
    ],
    initializer: [f32('W', w, [d, s])],
    input: [vi('hidden_in', ['batch', 'tokens', d])],
    output: [vi('pooled', ['batch', s])]
  })
}

function randomWeights(n: number, scale: number, seed: number): Float32Array {
  const rand = mulberry32(seed)
  const out = new Float32Array(n)
  // Uniform with the variance of N(0, scale^2): the speed of a product does not depend on the distribution.
  const a = scale * Math.sqrt(3)
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * a
  return out
}

async function session(bytes: Uint8Array): Promise<{ s: ort.InferenceSession; provider: string }> {
  const providers = requestedProviders()
  const base = { graphOptimizationLevel: 'all' as const, intraOpNumThreads: availableParallelism() }
  if (providers.includes('cuda')) {
    try {
      return {
        s: await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda', 'cpu'] }),
        provider: 'cuda'
      }
    } catch {
      /* falls back below */
    }
  }
  return { s: await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] }), provider: 'cpu' }
}

async function seconds(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<number> {
  await s.run(feeds) // warm-up: allocations, kernel selection
  const t0 = performance.now()
  for (let i = 0; i < RUNS; i++) await s.run(feeds)
  return (performance.now() - t0) / 1000 / RUNS
}

const rows: string[] = []
for (const [d, S] of sizes) {
  const tokens = B * T
  const x = randomWeights(tokens * d, 1, 1)
  const hidden = new ort.Tensor('float32', x, [B, T, d])
  const poolMask = new ort.Tensor('float32', new Float32Array(tokens).fill(1), [B, T])
  const wEnc = randomWeights(d * S, 1 / Math.sqrt(d), 2)

  const plain = await session(matmulGraph(wEnc, d, S))
  const plainSeconds = await seconds(plain.s, { hidden_in: hidden })
  await plain.s.release()
  rows.push(
    `${`${d} x ${S}`.padEnd(14)} ${'plain MatMul + max'.padEnd(30)} ${String(Math.round(tokens / plainSeconds)).padStart(9)} tok/s  ${(plainSeconds * 1000).toFixed(0).padStart(7)} ms/batch  1.00x  (${plain.provider})`
  )

  for (const [architecture, saeDtype] of [
    ['topk', 'float32'],
    ['jumprelu', 'float32'],
    ['topk', 'float16']
  ] as const) {
    const common = {
      dIn: d,
      dSae: S,
      wEnc,
      bEnc: randomWeights(S, 0.1, 4),
      bDec: randomWeights(d, 0.1, 5),
      applyBDecToInput: true,
      normalizeActivations: 'none',
      rescaleActsByDecoderNorm: false,
      hookName: 'blocks.0.hook_resid_post',
      sourceDtype: 'F32'
    } as const
    const sae: SaeWeights =
      architecture === 'topk'
        ? { ...common, architecture, k: K }
        : { ...common, architecture, threshold: randomWeights(S, 0.05, 3).map(v => Math.abs(v) + 0.1) }
    const graph = buildPooledGraph(identityReader(d), sae, {
      output: 'hidden_states',
      method: 'max',
      outlierNormRatio: 100,
      saeDtype
    })
    const pooled = await session(graph.bytes)
    const t = await seconds(pooled.s, { hidden_in: hidden, pool_mask: poolMask })
    await pooled.s.release()
    const name = `SAE ${architecture === 'topk' ? `topk (k ${K})` : 'jumprelu'}${saeDtype === 'float16' ? ' f16' : ''} + max pool`
    rows.push(
      `${' '.repeat(14)} ${name.padEnd(30)} ${String(Math.round(tokens / t)).padStart(9)} tok/s  ${(t * 1000).toFixed(0).padStart(7)} ms/batch  ${(t / plainSeconds).toFixed(2)}x  (${pooled.provider})`
    )
  }
}
console.log(
  `SAE encode throughput, batch ${B} x ${T} tokens, ${RUNS} runs after a warm-up, float32 weights, ${availableParallelism()} CPU threads`
)
console.log(
  `${'d_in x d_sae'.padEnd(14)} ${'graph'.padEnd(30)} ${'tokens/s'.padStart(15)}  ${'time'.padStart(14)}  vs plain`
)
for (const r of rows) console.log(r)
