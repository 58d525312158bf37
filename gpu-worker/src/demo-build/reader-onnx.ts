/** @module A GPT-2-shaped transformer reader written to ONNX by our own code, from seeded random weights (the demo reader before it was trained; kept as a tested builder for synthetic readers). */
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { xoshiro128 } from '@latentbase/shared/util/random'
import { GraphBuilder, float, int, ints, readerPrelude } from './onnx-graph.ts'

/**
 * Shape and seed of the demo reader. A fresh clone cannot download weights, so the reader is built
 * from these numbers alone; the same spec gives the same bytes on every machine.
 */
export interface ReaderSpec {
  /** Token embedding rows: the tokenizer's vocabulary size (32000 for Llama 2). */
  vocab: number
  dModel: number
  nHeads: number
  dMlp: number
  nLayers: number
  /** Learned position embedding rows: the longest sequence the reader accepts. */
  maxPositions: number
  seed: number
}

export const READER_SPEC: Readonly<ReaderSpec> = Object.freeze({
  vocab: 32000,
  dModel: 256,
  nHeads: 4,
  dMlp: 1024,
  nLayers: 4,
  maxPositions: 512,
  seed: 20250601
})

/**
 * Bumped whenever the bytes this builder writes for a given spec change (graph layout, PRNG, tensor
 * order): it is part of the build key, so installed readers are rebuilt and the SAE retrained.
 */
export const READER_BUILDER_VERSION = 1

/** GPT-2's initializer std; drawn uniformly (same variance) so no transcendental functions are needed. */
const INIT_STD = 0.02
const LAYER_NORM_EPS = 1e-5
/**
 * Additive bias for masked attention scores. Finite rather than -inf: with right padding no query row
 * is fully masked, but a finite value can never turn a row into NaN (-inf - -inf) if one ever is.
 */
export const MASKED_SCORE = -1e9

/** Weights of one block, in GPT-2's Conv1D layout: matrices are [in, out], so y = x W + b. */
export interface BlockWeights {
  ln1Gain: Float32Array
  ln1Bias: Float32Array
  attnW: Float32Array
  attnB: Float32Array // c_attn [D, 3D]: q, k, v side by side
  attnProjW: Float32Array
  attnProjB: Float32Array // attn.c_proj [D, D]
  ln2Gain: Float32Array
  ln2Bias: Float32Array
  fcW: Float32Array
  fcB: Float32Array // mlp.c_fc [D, dMlp]
  mlpProjW: Float32Array
  mlpProjB: Float32Array // mlp.c_proj [dMlp, D]
}

export interface ReaderWeights {
  wte: Float32Array // [vocab, D]
  wpe: Float32Array // [maxPositions, D]
  blocks: BlockWeights[]
}

/** FNV-1a of a tensor name: gives every tensor its own stream, so adding a tensor never shifts the others. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** U(-std*sqrt(3), +std*sqrt(3)) has standard deviation `std`. */
function uniformTensor(seed: number, name: string, count: number, std: number): Float32Array {
  const next = xoshiro128((seed ^ fnv1a(name)) >>> 0)
  const half = std * Math.sqrt(3)
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = (2 * next() - 1) * half
  return out
}

/** The reader's weights, generated from the spec: GPT-2 init (LayerNorm gain 1, biases 0). */
export function generateReaderWeights(spec: ReaderSpec): ReaderWeights {
  checkSpec(spec)
  const { vocab, dModel: D, dMlp, nLayers, maxPositions, seed } = spec
  // GPT-2 scales the residual-writing projections by 1/sqrt(2 n_layer) so the stream's variance
  // does not grow with depth.
  const projStd = INIT_STD / Math.sqrt(2 * nLayers)
  const ones = (n: number) => new Float32Array(n).fill(1)
  const zeros = (n: number) => new Float32Array(n)
  const blocks: BlockWeights[] = []
  for (let l = 0; l < nLayers; l++) {
    const p = `h.${l}.`
    blocks.push({
      ln1Gain: ones(D),
      ln1Bias: zeros(D),
      attnW: uniformTensor(seed, p + 'attn.c_attn.weight', D * 3 * D, INIT_STD),
      attnB: zeros(3 * D),
      attnProjW: uniformTensor(seed, p + 'attn.c_proj.weight', D * D, projStd),
      attnProjB: zeros(D),
      ln2Gain: ones(D),
      ln2Bias: zeros(D),
      fcW: uniformTensor(seed, p + 'mlp.c_fc.weight', D * dMlp, INIT_STD),
      fcB: zeros(dMlp),
      mlpProjW: uniformTensor(seed, p + 'mlp.c_proj.weight', dMlp * D, projStd),
      mlpProjB: zeros(D)
    })
  }
  return {
    wte: uniformTensor(seed, 'wte', vocab * D, INIT_STD),
    wpe: uniformTensor(seed, 'wpe', maxPositions * D, INIT_STD),
    blocks
  }
}

function checkSpec(spec: ReaderSpec): void {
  for (const key of ['vocab', 'dModel', 'nHeads', 'dMlp', 'nLayers', 'maxPositions'] as const) {
    if (!Number.isInteger(spec[key]) || spec[key] <= 0)
      throw new Error(`reader spec: ${key} must be a positive integer, got ${spec[key]}`)
  }
  if (spec.dModel % spec.nHeads !== 0)
    throw new Error(`reader spec: dModel ${spec.dModel} is not divisible by nHeads ${spec.nHeads}`)
  if (!Number.isInteger(spec.seed)) throw new Error(`reader spec: seed must be an integer, got ${spec.seed}`)
}

// ---------------------------------------------------------------------------------------------
// The graph.

/**
 * Writes the reader as an ONNX ModelProto (opset 17).
 * Inputs: `input_ids` int64 [B, T], `attention_mask` int64 [B, T] (1 = token, 0 = right padding).
 * Outputs: `hidden_states.{i}` float32 [B, T, D] for i = 0..nLayers, as Hugging Face numbers them:
 * 0 is the embedding output, i is the residual stream after block i-1 (= blocks.{i-1}.hook_resid_post).
 * No final LayerNorm is applied to any of them, so every output is a plain residual stream.
 */
export function buildReaderModel(spec: ReaderSpec = READER_SPEC, weights = generateReaderWeights(spec)): Uint8Array {
  const { vocab, dModel: D, nHeads: H, dMlp, nLayers, maxPositions } = spec
  const dHead = D / H
  const g = new GraphBuilder()
  // The inputs, and constants shared by every block.
  const { ids, mask, zero, one, axis0, axis1 } = readerPrelude(g)
  const axes12 = g.int64Tensor('const.axes12', [1, 2])
  const headShape = g.int64Tensor('const.head_shape', [0, 0, H, dHead]) // 0 = keep B, T
  const mergeShape = g.int64Tensor('const.merge_shape', [0, 0, D])
  const qkvSplit = g.int64Tensor('const.qkv_split', [D, D, D])
  const maskedScore = g.scalar('const.masked_score', MASKED_SCORE)
  const zeroF = g.scalar('const.zero_f', 0)
  const invSqrtHead = g.scalar('const.inv_sqrt_head', 1 / Math.sqrt(dHead))
  const half = g.scalar('const.half', 0.5)
  const oneF = g.scalar('const.one_f', 1)
  const geluCubic = g.scalar('const.gelu_cubic', 0.044715)
  const geluScale = g.scalar('const.gelu_scale', Math.sqrt(2 / Math.PI))

  // Embeddings: token rows plus learned positions 0..T-1. Right padding means the real tokens of
  // every row start at position 0, so positions come from the input's shape, not from the mask.
  const wte = g.floatTensor('wte.weight', weights.wte, [vocab, D])
  const wpe = g.floatTensor('wpe.weight', weights.wpe, [maxPositions, D])
  const tokens = g.op('Gather', [g.op('Shape', [ids]), one], { axis: int(0) }) // scalar T
  const positions = g.op('Range', [zero, tokens, one]) // [T]
  let x = g.op(
    'Add',
    [g.op('Gather', [wte, ids], { axis: int(0) }), g.op('Gather', [wpe, positions], { axis: int(0) })],
    {},
    'hidden_states.0'
  )
  g.output(x, 'float32', ['batch', 'tokens', D])

  // Attention bias [B, 1, T, T], built once: a key is hidden from a query if it comes later
  // (causality) or is padding. Both are folded into one additive term before the softmax.
  const later = g.op('Greater', [g.op('Unsqueeze', [positions, axis0]), g.op('Unsqueeze', [positions, axis1])]) // [T, T]: key j > query i
  const padding = g.op('Unsqueeze', [g.op('Equal', [mask, g.int64Tensor('const.zero_mask', [0], [])]), axes12]) // [B, 1, 1, T]
  const bias = g.op('Where', [g.op('Or', [later, padding]), maskedScore, zeroF]) // [B, 1, T, T]

  const linear = (input: string, w: Float32Array, b: Float32Array, name: string, dIn: number, dOut: number) =>
    g.op('Add', [
      g.op('MatMul', [input, g.floatTensor(`${name}.weight`, w, [dIn, dOut])]),
      g.floatTensor(`${name}.bias`, b, [dOut])
    ])
  const layerNorm = (input: string, gain: Float32Array, b: Float32Array, name: string) =>
    g.op(
      'LayerNormalization',
      [input, g.floatTensor(`${name}.weight`, gain, [D]), g.floatTensor(`${name}.bias`, b, [D])],
      { axis: int(-1), epsilon: float(LAYER_NORM_EPS) }
    )

  for (let l = 0; l < nLayers; l++) {
    const w = weights.blocks[l]
    const p = `h.${l}`
    // Causal multi-head self-attention with GPT-2's fused QKV projection.
    const qkv = linear(layerNorm(x, w.ln1Gain, w.ln1Bias, `${p}.ln_1`), w.attnW, w.attnB, `${p}.attn.c_attn`, D, 3 * D)
    const [q, k, v] = g.opMulti('Split', [qkv, qkvSplit], 3, { axis: int(2) })
    const heads = (t: string, perm: number[]) =>
      g.op('Transpose', [g.op('Reshape', [t, headShape])], { perm: ints(perm) })
    const qh = heads(q, [0, 2, 1, 3]) // [B, H, T, dh]
    const kt = heads(k, [0, 2, 3, 1]) // [B, H, dh, T]
    const vh = heads(v, [0, 2, 1, 3]) // [B, H, T, dh]
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [qh, kt]), invSqrtHead]), bias])
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: int(-1) }), vh]) // [B, H, T, dh]
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: ints([0, 2, 1, 3]) }), mergeShape])
    x = g.op('Add', [x, linear(merged, w.attnProjW, w.attnProjB, `${p}.attn.c_proj`, D, D)])

    // MLP with GPT-2's tanh-approximated GELU (opset 17 has no Gelu op, so it is spelled out).
    const h = linear(layerNorm(x, w.ln2Gain, w.ln2Bias, `${p}.ln_2`), w.fcW, w.fcB, `${p}.mlp.c_fc`, D, dMlp)
    const cube = g.op('Mul', [g.op('Mul', [h, h]), h])
    const inner = g.op('Mul', [g.op('Add', [h, g.op('Mul', [cube, geluCubic])]), geluScale])
    const gelu = g.op('Mul', [g.op('Mul', [h, half]), g.op('Add', [g.op('Tanh', [inner]), oneF])])
    x = g.op('Add', [x, linear(gelu, w.mlpProjW, w.mlpProjB, `${p}.mlp.c_proj`, dMlp, D)], {}, `hidden_states.${l + 1}`)
    g.output(x, 'float32', ['batch', 'tokens', D])
  }

  return g.toModel(
    'latentbase-demo-reader',
    'Randomly initialized GPT-2-shaped reader for the Latentbase demo encoder (weights from a seeded PRNG, untrained).',
    { spec: JSON.stringify(spec), builderVersion: String(READER_BUILDER_VERSION) }
  )
}

/** sha256 of the reader bytes a spec produces (what training-report.json records). */
export function readerSha256(spec: ReaderSpec = READER_SPEC): string {
  return sha256Hex(buildReaderModel(spec))
}

/** Key of a build: changes when anything that could change the reader's bytes changes. */
export function readerBuildKey(spec: ReaderSpec = READER_SPEC): string {
  const { vocab, dModel, nHeads, dMlp, nLayers, maxPositions, seed } = spec
  return sha256Hex(
    JSON.stringify({ vocab, dModel, nHeads, dMlp, nLayers, maxPositions, seed, builder: READER_BUILDER_VERSION })
  )
}
