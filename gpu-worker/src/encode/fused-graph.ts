/** @module Composes one ONNX graph per batch: the reader pruned at the chosen layer, then SAE encode and masked pooling. */
import onnxPkg from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import type { PoolingMethod } from '@latentbase/shared/contract/dataset'
import { architectureOf, type GraphGate, type SaeWeights } from './architectures/index.ts'
import { DT, GraphBuilder, valueInfo } from './graph-builder.ts'
import { externalize, INLINE_LIMIT_BYTES } from './external-data.ts'

const { onnx } = onnxPkg

/** Precisions of the SAE encoder's matrix product (ReaderGraphOptions.saeDtype). */
export type SaeDtype = 'float32' | 'float16' | 'int8'
export const SAE_DTYPES: readonly SaeDtype[] = ['float32', 'float16', 'int8']

/** Which reader value holds the hidden states: a name, or an index into a stacked [L, B, T, D] output. */
export type ReaderOutputRef = string | { name: string; index: number }

export interface ReaderGraphOptions {
  output: ReaderOutputRef
  /** 'center' subtracts each token's mean over d_model before anything else. */
  preprocess?: 'none' | 'center'
  /**
   * Precision of the SAE encoder's matrix product (default float32). float16 halves the weights' memory and uses
   * tensor cores on a GPU; int8 (CPU) quantizes the weights per latent and each token's input per token, and
   * multiplies in integers (VNNI): a quarter of the weights' memory and about 2x the product's speed. Activations come
   * back to float32 before the threshold / top-k and pooling.
   */
  saeDtype?: SaeDtype
  /**
   * A composed graph whose inline weights (reader and SAE together) pass this many bytes keeps them in external
   * data (ComposedGraph.externalData): protobuf cannot hold a model past 2 GB. Default INLINE_LIMIT_BYTES; tests lower it.
   */
  inlineLimitBytes?: number
}

/** The side file a composed graph's own weights go to when they pass the inline limit. */
export const COMPOSED_DATA_FILE = 'composed.onnx.data'

export interface PooledGraphOptions extends ReaderGraphOptions {
  method: PoolingMethod
  /** Tokens whose norm exceeds this multiple of the document's median norm leave the pool (Infinity: none). */
  outlierNormRatio: number
  /**
   * Top-example capture in the same pass: with this set, the graph takes `example_threshold` float32 [S] and
   * `example_all` float32 [B] and also returns, for every (row, latent) whose pooled value is > 0 and >= the
   * latent's threshold (or any > 0 on a row flagged in example_all), the activations of the tokens
   * argmax - halfWindow .. argmax + halfWindow (positions clamped into the batch; 0 on tokens left out of pooling).
   */
  examples?: { halfWindow: number }
}

export interface TokenActivationsGraphOptions extends ReaderGraphOptions {
  outlierNormRatio: number
  /** Add an input `latent_ids` int64 [L] and return only those latents: [B, T, L] instead of [B, T, S]. */
  selectLatents?: boolean
}

export const LATENT_IDS_INPUT = 'latent_ids'
/** Inputs and outputs of the top-example capture (PooledGraphOptions.examples). */
export const EXAMPLE_THRESHOLD_INPUT = 'example_threshold'
export const EXAMPLE_ALL_INPUT = 'example_all'

export type InputElemType = 'float32' | 'float16' | 'int32' | 'int64' | 'bool'

export interface GraphInput {
  name: string
  type: InputElemType
}

export interface ComposedGraph {
  /**
   * Serialized ModelProto: ready for InferenceSession.create when neither the reader nor this graph keeps weights in
   * external data; otherwise written to disk beside its side files (external-data.ts writeModelWithExternalData).
   */
  bytes: Uint8Array
  /** The weights moved out of `bytes` (past inlineLimitBytes), to be written as `location` beside the model file. */
  externalData?: { location: string; bytes: Uint8Array }
  /** The reader inputs the pruned graph still needs (an unused attention mask is dropped). */
  readerInputs: GraphInput[]
  /** Output names, in the order the builder declares them. */
  outputs: string[]
  opset: number
  /** Node and initializer names of the composed graph (for inspection and tests). */
  nodeNames: string[]
  initializerNames: string[]
  ops: string[]
}

/** Name of the extra graph input: float32 [B, T], 1 = pool this token. */
export const POOL_MASK_INPUT = 'pool_mask'
export const MIN_OPSET = 13

// ---------------------------------------------------------------------------------------------
// Reader: decode and prune
// ---------------------------------------------------------------------------------------------

type Long = { toNumber(): number }
const num = (v: number | Long | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber()

export function decodeModel(bytes: Uint8Array): Onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes)
  } catch (err) {
    throw new Error(`reader model: not a valid ONNX file (${(err as Error).message})`)
  }
}

/** ai.onnx opset of the model (domain "" or "ai.onnx"). */
export function defaultOpset(model: Onnx.IModelProto): number {
  const entry = (model.opsetImport ?? []).find(o => !o.domain || o.domain === 'ai.onnx')
  if (!entry) throw new Error('reader model: no ai.onnx opset import')
  return num(entry.version as number | Long)
}

/** Every value a node reads, including outer-scope names used inside its subgraphs (If / Loop / Scan). */
function nodeReads(node: Onnx.INodeProto, out: Set<string>): void {
  for (const i of node.input ?? []) if (i) out.add(i)
  for (const a of node.attribute ?? []) {
    const graphs = [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]
    for (const g of graphs) for (const n of g.node ?? []) nodeReads(n, out)
  }
}

/** Which nodes the given values depend on (`keep`, by node index), and every value those nodes read (`needed`). */
function markLive(
  nodes: Onnx.INodeProto[],
  roots: string[],
  producer = producers(nodes)
): { keep: Uint8Array; needed: Set<string> } {
  const needed = new Set<string>(roots)
  const keep = new Uint8Array(nodes.length)
  const stack = [...roots]
  while (stack.length) {
    const p = producer.get(stack.pop()!)
    if (p === undefined || keep[p]) continue
    keep[p] = 1
    const reads = new Set<string>()
    nodeReads(nodes[p], reads)
    for (const r of reads)
      if (!needed.has(r)) {
        needed.add(r)
        stack.push(r)
      }
  }
  return { keep, needed }
}

function producers(nodes: Onnx.INodeProto[]): Map<string, number> {
  const producer = new Map<string, number>()
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) if (o) producer.set(o, i)
  })
  return producer
}

interface PrunedReader {
  nodes: Onnx.INodeProto[]
  initializers: Onnx.ITensorProto[]
  sparseInitializers: Onnx.ISparseTensorProto[]
  inputs: Onnx.IValueInfoProto[]
  valueInfo: Onnx.IValueInfoProto[]
  /** Element type of the chosen value when the model declares it, else undefined. */
  elemType?: number
  /** Declared shape of the chosen value (numbers, names, or null when unknown). */
  shape?: (number | string | null)[]
}

/** Keep only what the chosen value depends on: a reader with 12 layers cut at layer 6 runs 6. */
export function pruneReader(model: Onnx.IModelProto, valueName: string): PrunedReader {
  const graph = model.graph
  if (!graph) throw new Error('reader model: no graph')
  const nodes = graph.node ?? []
  const producer = producers(nodes)
  const initNames = new Set((graph.initializer ?? []).map(t => t.name ?? ''))
  const sparseNames = new Set((graph.sparseInitializer ?? []).map(t => t.values?.name ?? ''))
  const inputNames = new Set((graph.input ?? []).map(v => v.name ?? ''))
  if (!producer.has(valueName) && !inputNames.has(valueName)) {
    const outs = (graph.output ?? []).map(o => o.name).join(', ')
    throw new Error(`reader model: no value named "${valueName}" (graph outputs: ${outs || 'none'})`)
  }
  const { keep, needed } = markLive(nodes, [valueName], producer)
  const keptNodes = nodes.filter((_, i) => keep[i])
  const inputs = (graph.input ?? []).filter(
    v => needed.has(v.name ?? '') && !initNames.has(v.name ?? '') && !sparseNames.has(v.name ?? '')
  )
  const initializers = (graph.initializer ?? []).filter(t => needed.has(t.name ?? ''))
  const sparseInitializers = (graph.sparseInitializer ?? []).filter(t => needed.has(t.values?.name ?? ''))
  // Initializers in external data (readers over 2 GB) keep their references: the runtime writes the composed graph
  // beside the reader's side files (external-data.ts), since onnxruntime resolves them only from a file on disk.
  const valueInfo = (graph.valueInfo ?? []).filter(v => needed.has(v.name ?? ''))
  const declared = [...(graph.output ?? []), ...(graph.valueInfo ?? []), ...(graph.input ?? [])].find(
    v => v.name === valueName
  )
  const tensorType = declared?.type?.tensorType
  const shape = tensorType?.shape?.dim?.map(d =>
    d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue as number | Long) > 0
      ? num(d.dimValue as number | Long)
      : d.dimParam || null
  )
  return {
    nodes: keptNodes,
    initializers,
    sparseInitializers,
    inputs,
    valueInfo,
    ...(tensorType?.elemType ? { elemType: tensorType.elemType } : {}),
    ...(shape ? { shape } : {})
  }
}

function inputType(v: Onnx.IValueInfoProto): InputElemType {
  const t = v.type?.tensorType?.elemType
  switch (t) {
    case DT.FLOAT:
      return 'float32'
    case DT.FLOAT16:
      return 'float16'
    case DT.INT32:
      return 'int32'
    case DT.INT64:
      return 'int64'
    case DT.BOOL:
      return 'bool'
    default:
      throw new Error(
        `reader model: input "${v.name}" has element type ${t}, expected int64, int32, float, float16 or bool`
      )
  }
}

// ---------------------------------------------------------------------------------------------
// Composition
// ---------------------------------------------------------------------------------------------

interface Stage {
  model: Onnx.IModelProto
  pruned: PrunedReader
  b: GraphBuilder
  /** float32 [B, T, D] after the optional centring: the activations the SAE reads. */
  hidden: string
  readerInputs: GraphInput[]
  inlineLimitBytes: number
}

function readerStage(readerBytes: Uint8Array, opts: ReaderGraphOptions, dIn?: number): Stage {
  const model = decodeModel(readerBytes)
  const opset = defaultOpset(model)
  if (opset < MIN_OPSET) {
    throw new Error(
      `reader model: opset ${opset} is older than ${MIN_OPSET}; re-export the reader with opset >= ${MIN_OPSET}`
    )
  }
  const ref = typeof opts.output === 'string' ? { name: opts.output, index: undefined } : opts.output
  const pruned = pruneReader(model, ref.name)
  const b = new GraphBuilder(opset)
  let hidden = ref.name
  let shape = pruned.shape
  if (ref.index !== undefined) {
    if (shape && shape.length !== 4) {
      throw new Error(
        `encoder.json: reader.output.index is set but "${ref.name}" has rank ${shape.length}, not a stacked [layers, B, T, D] output`
      )
    }
    if (shape && typeof shape[0] === 'number' && ref.index >= shape[0]) {
      throw new Error(
        `encoder.json: reader.output.index is ${ref.index} but "${ref.name}" stacks only ${shape[0]} layers`
      )
    }
    hidden = b.op('Gather', [hidden, b.i64([ref.index], [], 'layer')], { axis: 0 }, 'layer_hidden')
    shape = shape?.slice(1)
  }
  if (shape && shape.length !== 3) {
    throw new Error(
      `reader model: "${ref.name}" has rank ${shape.length}; expected hidden states [batch, tokens, d_model]`
    )
  }
  if (dIn !== undefined && shape && typeof shape[2] === 'number' && shape[2] !== dIn) {
    throw new Error(`reader model: "${ref.name}" has d_model ${shape[2]} but the SAE's d_in is ${dIn}`)
  }
  if (pruned.elemType !== DT.FLOAT) hidden = b.cast(hidden, DT.FLOAT)
  if (opts.preprocess === 'center') {
    hidden = b.op('Sub', [hidden, b.reduce('ReduceMean', hidden, [-1], true)], {}, 'centred')
  }
  return {
    model,
    pruned,
    b,
    hidden,
    readerInputs: pruned.inputs.map(v => ({ name: v.name!, type: inputType(v) })),
    inlineLimitBytes: opts.inlineLimitBytes ?? INLINE_LIMIT_BYTES
  }
}

/** Value that masked tokens add to every pre-activation: far below any threshold, still finite in float32. */
const MASKED = -1e30

/** L2 norm over d_model of each token: the quantity outlier masking compares. */
function tokenNorms(b: GraphBuilder, x: string): string {
  return b.op('Sqrt', [b.reduce('ReduceSum', b.op('Mul', [x, x]), [-1], false)], {}, 'token_norm')
}

/** What preActivations leaves for the pooling stage besides h: the SAE's input, and h before its per-latent bias. */
interface PreActivationParts {
  /** float32 [B, T, D]: the input the SAE's product reads (after its normalization). */
  input?: string
  /**
   * int8 only: h = values + bias with `bias` [S] constant over tokens, so max pooling takes the max of `values` and adds
   * the bias to [B, S] (and top-example windows to [N, W]), which saves a pass over [B, T, S]. fl(a + c) is monotone
   * in a, so the max is the same float; float32 and float16 fold the bias into the product instead.
   */
  unbiased?: { values: string; bias: string }
}

/**
 * The SAE's pre-activations [B, T, S] as ONE MatMul. Everything linear is folded into the weights at build
 * time (in float64): b_dec (x - b_dec) W + b_enc = x W + (b_enc - b_dec W), the decoder-norm rescale
 * (scales W's columns and the bias), and, when `keep` is given, the pool mask: the SAE input gets two extra
 * columns, [1, penalty], multiplying the folded bias row and a row of ones, so a token left out of pooling
 * sits at -1e30 on every latent and can never be a max, a count or part of a sum. That saves a full
 * masking pass over the dense [B, T, S] activations.
 */
function preActivations(
  b: GraphBuilder,
  x: string,
  sae: SaeWeights,
  keep?: string,
  dtype: SaeDtype = 'float32',
  io: PreActivationParts = {}
): string {
  const D = sae.dIn
  const S = sae.dSae
  if (sae.normalizeActivations === 'constant_norm_rescale') {
    const norm3 = b.op('Max', [b.unsqueeze(tokenNorms(b, x), [-1]), b.f32([1e-12], [])])
    x = b.op('Mul', [x, b.op('Div', [b.f32([Math.sqrt(D)], []), norm3])], {}, 'rescaled')
  } else if (sae.normalizeActivations === 'layer_norm') {
    const xc = b.op('Sub', [x, b.reduce('ReduceMean', x, [-1], true)])
    // torch's default std is unbiased (divides by d_in - 1)
    const variance = b.op('Div', [b.reduce('ReduceSum', b.op('Mul', [xc, xc]), [-1], true), b.f32([D - 1], [])])
    x = b.op('Div', [xc, b.op('Add', [b.op('Sqrt', [variance]), b.f32([1e-5], [])])], {}, 'layer_normed')
  }
  if (sae.rescaleActsByDecoderNorm && !sae.decoderNorms)
    throw new Error('SAE: rescale_acts_by_decoder_norm is set but no decoder norms were loaded')
  if (sae.rescaleActsByDecoderNorm && !architectureOf(sae).decoderNormRescale)
    throw new Error(`SAE: rescale_acts_by_decoder_norm is not defined for a ${sae.architecture} SAE`)
  io.input = x
  if (dtype === 'int8') return preActivationsInt8(b, x, sae, keep, io)
  // float16: the penalty stays out of the half-precision product (-1e30 is -inf there, and +inf from an outlier
  // token's huge activations would meet it as NaN): masked tokens are zeroed, multiplied, then penalized in float32.
  const half = dtype === 'float16'
  const rows = D + 1 + (keep && !half ? 1 : 0)
  const w = foldEncoder(sae, rows)
  if (keep && !half) w.fill(1, (D + 1) * S, (D + 2) * S)
  const pen3 = keep
    ? b.unsqueeze(b.op('Where', [keep, b.f32([0], []), b.f32([MASKED], [], 'masked')], {}, 'penalty'), [-1])
    : null
  const btShape = b.op('Slice', [b.op('Shape', [x]), b.i64([0], [1]), b.i64([2], [1]), b.i64([0], [1])])
  const ones = b.op(
    'Expand',
    [b.f32([1], [], 'one'), b.op('Concat', [btShape, b.i64([1], [1])], { axis: 0 })],
    {},
    'ones'
  )
  if (half) {
    const kept = keep ? b.op('Where', [b.unsqueeze(keep, [-1]), x, b.zero()], {}, 'sae_in_kept') : x
    const xa16 = b.cast(b.op('Concat', [kept, ones], { axis: -1 }, 'sae_in'), DT.FLOAT16)
    const h = b.cast(b.op('MatMul', [xa16, b.f16(w, [rows, S], 'W_enc_folded_f16')], {}, 'hidden_pre_f16'), DT.FLOAT)
    return pen3 ? b.op('Add', [h, pen3], {}, 'hidden_pre') : h
  }
  const xa = b.op('Concat', [x, ones, ...(pen3 ? [pen3] : [])], { axis: -1 }, 'sae_in')
  return b.op('MatMul', [xa, b.f32(w, [rows, S], 'W_enc_folded')], {}, 'hidden_pre')
}

/**
 * The encoder with everything linear folded in, [rows, S] row-major: rows 0..D-1 are W_enc with each column scaled by
 * the decoder norm when the SAE asks for it, row D is b_enc - b_dec W_enc (scaled the same way; b_enc alone when
 * `foldBDec` is false and the graph subtracts b_dec itself), and any further rows are left 0 for the caller.
 */
function foldEncoder(sae: SaeWeights, rows: number, foldBDec = true): Float32Array {
  const D = sae.dIn
  const S = sae.dSae
  const w = new Float32Array(rows * S)
  for (let s = 0; s < S; s++) {
    const scale = sae.rescaleActsByDecoderNorm ? sae.decoderNorms![s] : 1
    let bias = sae.bEnc[s]
    for (let i = 0; i < D; i++) {
      const wis = sae.wEnc[i * S + s]
      w[i * S + s] = wis * scale
      if (sae.applyBDecToInput && foldBDec) bias -= sae.bDec[i] * wis
    }
    w[D * S + s] = bias * scale
  }
  return w
}

/** A masked token's input scale in the int8 product: its one input of 1.0 against -127 s_j puts it at or below -1e22. */
const MASKED_TOKEN_SCALE = 1e28
/** Smallest weight scale of a latent, so that the masked token's penalty stays large for every latent. */
const MIN_WEIGHT_SCALE = 1e-8

/**
 * The int8 product (CPU): each latent's folded weights are quantized symmetrically (scale s_j = max |w| / 127), each
 * token's input (x - b_dec where the SAE applies b_dec) by its own largest |x| (m_t: x / m_t lies in [-1, 1], stored as uint8 around 128), and onnxruntime's
 * MatMulIntegerToFloat (com.microsoft; VNNI on x86) returns (x / m_t) W in float32; then h = that * m_t + bias, the
 * bias in float32. A scale per token, not per batch, keeps a token with a few huge dimensions from flattening every
 * other token's input. A masked token's input is zeroed and one extra column holds 1.0 (exactly 127 after
 * quantization) against a weight row of -127, with m_t = 1e28: it sits below -1e22 on every latent, so it can never
 * be a max, a count or part of a sum, without a masking pass over [B, T, S].
 */
function preActivationsInt8(
  b: GraphBuilder,
  x: string,
  sae: SaeWeights,
  keep: string | undefined,
  io: PreActivationParts
): string {
  const D = sae.dIn
  const S = sae.dSae
  // The quantized input is x - b_dec where the SAE subtracts it: b_dec sits near the activations' mean, so this takes
  // a residual stream's large constant dimensions out of each token's largest |x|, and with them out of the step.
  const folded = foldEncoder(sae, D + 1, false)
  if (sae.applyBDecToInput) x = b.op('Sub', [x, b.f32(sae.bDec, [D], 'b_dec')], {}, 'sae_in_centred')
  const rows = D + (keep ? 1 : 0)
  const q = new Int8Array(rows * S)
  const scales = new Float32Array(S)
  for (let s = 0; s < S; s++) {
    let max = 0
    for (let i = 0; i < D; i++) max = Math.max(max, Math.abs(folded[i * S + s]))
    const scale = Math.max(max / 127, MIN_WEIGHT_SCALE)
    scales[s] = scale
    for (let i = 0; i < D; i++) q[i * S + s] = Math.max(-127, Math.min(127, Math.round(folded[i * S + s] / scale)))
    if (keep) q[D * S + s] = -127
  }
  const bias = folded.subarray(D * S, (D + 1) * S)
  const largest = b.reduce('ReduceMax', b.op('Abs', [x]), [-1], true)
  let tokenScale = b.op('Max', [largest, b.f32([1e-30], [])], {}, 'token_scale') // [B, T, 1]
  let unit = b.op('Div', [x, tokenScale], {}, 'sae_in_unit')
  if (keep) {
    const keep3 = b.unsqueeze(keep, [-1])
    unit = b.op('Concat', [b.op('Where', [keep3, unit, b.zero()]), b.cast(b.op('Not', [keep3]), DT.FLOAT)], {
      axis: -1
    })
    tokenScale = b.op('Where', [keep3, tokenScale, b.f32([MASKED_TOKEN_SCALE], [], 'masked_token_scale')])
  }
  const step = b.f32([1 / 127], [], 'input_step')
  const zeroPoint = b.int8(new Uint8Array([128]), [], 'input_zero_point')
  const xq = b.op('QuantizeLinear', [unit, step, zeroPoint], {}, 'sae_in_u8')
  const z = b.node(
    'MatMulIntegerToFloat',
    [xq, b.int8(q, [rows, S], 'W_enc_folded_i8'), step, b.f32(scales, [S], 'W_enc_scale'), zeroPoint],
    {},
    1,
    'hidden_pre_unit',
    'com.microsoft'
  )[0]
  const scaled = b.op('Mul', [z, tokenScale], {}, 'hidden_pre_unbiased')
  const biasName = b.f32(bias, [S], 'b_enc_folded')
  io.unbiased = { values: scaled, bias: biasName }
  return b.op('Add', [scaled, biasName], {}, 'hidden_pre')
}

/**
 * int8 with max pooling: every (row, latent) the int8 product found active gets its pooled pre-activation recomputed in
 * float32 at its argmax token (one D-long dot product each, with the float32 folded weights), so pooled values are
 * float32's own wherever the two agree on the token. What int8 still decides: which latents are active near the
 * threshold, and which token holds the max when two are within its rounding. Without this, a latent that fires just
 * past a large negative bias (most of them) inherits the whole rounding error of its pre-activation.
 */
function exactAtArgmax(
  b: GraphBuilder,
  input: string,
  sae: SaeWeights,
  max: string,
  index: string,
  token: string
): string {
  const D = sae.dIn
  const S = sae.dSae
  const folded = foldEncoder(sae, D + 1)
  const byLatent = new Float32Array(S * D)
  for (let i = 0; i < D; i++) for (let s = 0; s < S; s++) byLatent[s * D + i] = folded[i * S + s]
  const column = (i: number) => b.op('Gather', [index, b.i64([i], [], 'col')], { axis: 1 }) // [N]
  const latent = column(1)
  const at = b.op('Concat', [b.unsqueeze(column(0), [-1]), b.unsqueeze(token, [-1])], { axis: -1 }) // [N, 2]
  const xs = b.op('GatherND', [input, at], {}, 'input_at_argmax') // [N, D]
  const ws = b.op('Gather', [b.f32(byLatent, [S, D], 'W_enc_folded_by_latent'), latent], { axis: 0 }) // [N, D]
  // axis 1, not -1: onnxruntime returns an empty [0, D] unreduced for a negative axis (a batch where nothing fired)
  const dot = b.reduce('ReduceSum', b.op('Mul', [xs, ws]), [1], false)
  const exact = b.op('Add', [dot, b.op('Gather', [b.f32(folded.subarray(D * S), [S], 'b_enc_folded'), latent])])
  return b.op('ScatterND', [max, index, exact], {}, 'pooled_pre')
}

/**
 * Per document: median norm over the pooled tokens (lower median, by a sort with masked tokens at +inf),
 * then tokens above ratio x median leave the pool. Returns the kept-token mask (bool [B, T]) and the count.
 */
function outlierStage(
  b: GraphBuilder,
  norms: string,
  poolMask: string,
  ratio: number
): { keep: string; outliers: string } {
  const inMask = b.op('Greater', [poolMask, b.f32([0], [])], {}, 'in_pool')
  const inMaskF = b.cast(inMask, DT.FLOAT)
  const masked = b.op('Where', [inMask, norms, b.f32([Infinity], [], 'inf')])
  const tokens = b.op(
    'Slice',
    [b.op('Shape', [masked]), b.i64([1], [1]), b.i64([2], [1]), b.i64([0], [1])],
    {},
    'tokens'
  )
  const [sorted] = b.node('TopK', [masked, tokens], { axis: -1, largest: 0, sorted: 1 }, 2, 'sorted_norms')
  const n = b.reduce('ReduceSum', inMaskF, [1], true)
  const mid = b.op('Floor', [b.op('Div', [b.op('Sub', [n, b.f32([1], [])]), b.f32([2], [])])])
  const midIdx = b.cast(b.op('Max', [mid, b.f32([0], [])]), DT.INT64)
  const median = b.op('GatherElements', [sorted, midIdx], { axis: 1 }, 'median_norm')
  const limit = b.op('Mul', [median, b.f32([ratio], [], 'outlier_ratio')])
  const isOutlier = b.op('And', [inMask, b.op('Greater', [norms, limit])], {}, 'outlier')
  const keep = b.op('And', [inMask, b.op('Not', [isOutlier])], {}, 'pooled_token')
  const outliers = b.cast(b.reduce('ReduceSum', b.cast(isOutlier, DT.FLOAT), [1], false), DT.INT64)
  return { keep, outliers }
}

/**
 * The nodes the outputs depend on, and the builder's initializers they read. A stage may build a value that a later
 * choice leaves unread (int8 max pooling reads h before its bias, so the Add over [B, T, S] that makes h goes):
 * onnxruntime would run such a node anyway.
 */
function liveParts(
  nodes: Onnx.INodeProto[],
  initializers: Onnx.ITensorProto[],
  outputs: Onnx.IValueInfoProto[]
): { nodes: Onnx.INodeProto[]; initializers: Onnx.ITensorProto[] } {
  const { keep, needed } = markLive(
    nodes,
    outputs.map(o => o.name ?? '')
  )
  return {
    nodes: nodes.filter((_, i) => keep[i]),
    initializers: initializers.filter(t => needed.has(t.name ?? ''))
  }
}

function finish(stage: Stage, outputs: Onnx.IValueInfoProto[], extraInputs: Onnx.IValueInfoProto[]): ComposedGraph {
  const { model, pruned, b, inlineLimitBytes } = stage
  const live = liveParts([...pruned.nodes, ...b.nodes], b.initializers, outputs)
  const graph: Onnx.IGraphProto = {
    name: `latentbase(${model.graph?.name ?? 'reader'})`,
    node: live.nodes,
    initializer: [...pruned.initializers, ...live.initializers],
    sparseInitializer: pruned.sparseInitializers,
    input: [...pruned.inputs, ...extraInputs],
    output: outputs,
    valueInfo: pruned.valueInfo
  }
  const imported = new Set((model.opsetImport ?? []).map(o => o.domain ?? ''))
  const composed: Onnx.IModelProto = {
    irVersion: Math.max(num(model.irVersion as number | Long), 7),
    opsetImport: [
      ...(model.opsetImport ?? []),
      ...[...b.domains].filter(d => !imported.has(d)).map(domain => ({ domain, version: 1 }))
    ],
    producerName: 'latentbase',
    producerVersion: '1',
    domain: model.domain,
    modelVersion: model.modelVersion,
    functions: model.functions,
    metadataProps: model.metadataProps,
    graph
  }
  // A reader under the limit plus a large SAE (gpt2-small's 24,576 latents are 75 MB, a 131k-latent SAE on a 4096-wide
  // reader 2.1 GB) can pass protobuf's 2 GB: move the large inline weights out before encoding.
  let inline = 0
  for (const t of graph.initializer!)
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL)
      inline += (t.rawData as Uint8Array | null)?.byteLength ?? 0
  const side =
    inline > inlineLimitBytes
      ? externalize(composed, COMPOSED_DATA_FILE, Math.min(1 << 20, Math.max(1, inlineLimitBytes >> 4)))
      : null
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create(composed)).finish()
  return {
    bytes,
    ...(side?.byteLength ? { externalData: { location: COMPOSED_DATA_FILE, bytes: side } } : {}),
    readerInputs: stage.readerInputs,
    outputs: outputs.map(o => o.name!),
    opset: b.opset,
    nodeNames: graph.node!.map(n => n.name ?? ''),
    initializerNames: graph.initializer!.map(t => t.name ?? ''),
    ops: graph.node!.map(n => n.opType ?? '')
  }
}

const poolMaskInput = (): Onnx.IValueInfoProto => valueInfo(POOL_MASK_INPUT, DT.FLOAT, ['batch', 'tokens'])

/**
 * Top-example capture: the (row, latent) pairs that may enter a latent's running top list (pooled > 0 and >= the
 * latent's current threshold, or any > 0 on rows flagged `example_all`), and the activations of a window of
 * tokens around each one's argmax, gathered from the pre-activations (or from them before a per-latent bias, added to
 * the gathered values) with the gate applied to the gathered
 * values only. Masked tokens carry the -1e30 penalty in `h`, so they come out as 0, as the pool saw them.
 * Returns `example_index` int64 [N, 2] (row, latent) and `example_activations` float32 [N, 2 * halfWindow + 1].
 */
function exampleCapture(
  b: GraphBuilder,
  pre: { values: string; bias?: string },
  gate: GraphGate,
  pooled: string,
  argmax: string,
  halfWindow: number
): { index: string; acts: string } {
  const zero = b.zero()
  const all = b.op('Greater', [b.unsqueeze(EXAMPLE_ALL_INPUT, [-1]), zero], {}, 'example_row_all')
  const wanted = b.op('Or', [b.op('GreaterOrEqual', [pooled, EXAMPLE_THRESHOLD_INPUT]), all])
  const sel = b.op('And', [b.op('Greater', [pooled, zero]), wanted], {}, 'example_selected')
  const index = b.op('Transpose', [b.op('NonZero', [sel])], { perm: [1, 0] }, 'example_index') // [N, 2]
  const center = b.op('GatherND', [argmax, index], {}, 'example_center') // [N]
  const shape = b.op('Shape', [pre.values])
  const dim = (i: number) => b.op('Slice', [shape, b.i64([i], [1]), b.i64([i + 1], [1]), b.i64([0], [1])]) // [1]
  const lastToken = b.op('Sub', [dim(1), b.i64([1], [1], 'one_token')])
  const width = 2 * halfWindow + 1
  const offsets = b.i64(
    Array.from({ length: width }, (_, i) => i - halfWindow),
    [width],
    'window_offsets'
  )
  const positions = b.op(
    'Min',
    [b.op('Max', [b.op('Add', [b.unsqueeze(center, [1]), offsets]), b.i64([0], [], 'zero_i64')]), lastToken],
    {},
    'window_positions'
  ) // [N, W]
  const column = (i: number) => b.op('Gather', [index, b.i64([i], [], 'col')], { axis: 1 }) // [N]
  const rowIdx = column(0)
  const latentIdx = column(1)
  const spread = (x: string) => b.unsqueeze(b.op('Expand', [b.unsqueeze(x, [1]), b.op('Shape', [positions])]), [-1]) // [N, W, 1]
  const tokenIdx = b.op('Concat', [spread(rowIdx), b.unsqueeze(positions, [-1])], { axis: -1 }) // [N, W, 2]
  const perLatent = (v: string) => b.unsqueeze(b.op('Gather', [v, latentIdx], { axis: 0 }), [1]) // [N, 1]
  // The values as one flat vector, read token-major ([W, N]): GatherND reads [B, T, S] one element per index and
  // pays for it (9.4 ms against 3.0 this way, on 4 x 256 x 24,576 with every active pair wanted).
  const tokenMajor = b.op('Transpose', [positions], { perm: [1, 0] }) // [W, N]
  const flat = b.op('Add', [b.op('Mul', [b.op('Add', [b.op('Mul', [rowIdx, dim(1)]), tokenMajor]), dim(2)]), latentIdx])
  const gathered = gatherFlat(b, pre.values, flat, b.i64([width], [1], 'window_width')) // [W, N]
  let hg = b.op('Transpose', [gathered], { perm: [1, 0] }, 'window_pre') // [N, W]
  if (pre.bias) hg = b.op('Add', [hg, perLatent(pre.bias)])
  const acts = gate.window(b, hg, { tokenIdx, perLatent })
  return { index, acts }
}

/**
 * The elements of x at `positions` (int64 [R, N], offsets into x read as one flat vector): float32 [R, N]. One
 * GatherElements over the flat vector costs a few ns per element where GatherND's element-by-element indices cost
 * 16-40; positions laid out R-major keep neighbouring reads close. `rows` (int64 [1]) is R: the result is reshaped to
 * [R, -1], not to Shape(positions), since Reshape reads a 0 in a shape as "keep that dimension" and N may be 0.
 */
function gatherFlat(b: GraphBuilder, x: string, positions: string, rows: string): string {
  const flat = b.i64([-1], [1], 'flat')
  const values = b.op('GatherElements', [b.op('Reshape', [x, flat]), b.op('Reshape', [positions, flat])], { axis: 0 })
  return b.op('Reshape', [values, b.op('Concat', [rows, b.i64([-1], [1], 'rest')], { axis: 0 })])
}

/** Largest block of tokens the argmax is split into (T's largest divisor up to this). */
const ARGMAX_BLOCK = 16

/** The max over tokens of [B, T, S], and the argmax where a mask says it is needed (maxOverTokens). */
export interface TokenMax {
  /** float32 [B, S]. */
  max: string
  /**
   * The first token holding the max, for the (row, latent) pairs where `active` (bool [B, S]) is true: `argmax` int64
   * [B, S] (0 elsewhere), `index` int64 [N, 2] the active pairs in row-major order, `at` int64 [N] their tokens.
   */
  argmaxWhere(active: string): { argmax: string; index: string; at: string }
}

/**
 * Max and argmax over tokens of [B, T, S]. onnxruntime's ArgMax over a middle axis runs a scalar loop (bench:gpt2's
 * profile: ~8% of the reader's time at 24,576 latents), its ReduceMax a vectorized one. So the tokens are split into
 * blocks of K (K = T's largest divisor up to 16: 16 for the maxTokens-long batches of long documents, 1 when T is a
 * prime above 16): ReduceMax gives each block's max, a second ReduceMax over those the max, ArgMax
 * over the T / K block maxima picks the block, and, only for the pairs a caller needs (those whose latent fired: most
 * do not), an ArgMax over the chosen block's K tokens (gathered, N x K values) the token. Ties resolve to the first
 * token, as one ArgMax does: no block before the first maximal token reaches its value, and within its block ArgMax
 * takes the first. Measured on [4, 256, 24576]: one ArgMax 54 ms, blocks for every pair 12 ms, blocks for the active
 * pairs less.
 */
export function maxOverTokens(b: GraphBuilder, x: string): TokenMax {
  const shape = b.op('Shape', [x])
  const dim = (i: number) => b.op('Slice', [shape, b.i64([i], [1]), b.i64([i + 1], [1]), b.i64([0], [1])]) // [1]
  const tokens = dim(1)
  // K: the largest k in 1..16 with T mod k = 0, as one vector of candidates (a few nodes, whatever the bound).
  const ks = b.i64(
    Array.from({ length: ARGMAX_BLOCK }, (_, i) => i + 1),
    [ARGMAX_BLOCK],
    'argmax_block_sizes'
  )
  const divides = b.op('Equal', [b.op('Mod', [tokens, ks]), b.i64([0], [1], 'zero_i64')])
  const block = b.reduce('ReduceMax', b.op('Where', [divides, ks, b.i64([1], [1], 'one_i64')]), [0], true) // [1]
  const blocks = b.op('Div', [tokens, block])
  const x4 = b.op('Reshape', [x, b.op('Concat', [dim(0), blocks, block, dim(2)], { axis: 0 })], {}, 'token_blocks') // [B, T/K, K, S]
  const blockMax = b.reduce('ReduceMax', x4, [2], false) // [B, T/K, S]
  const max = b.reduce('ReduceMax', blockMax, [1], false)
  return {
    max,
    argmaxWhere(active) {
      const index = b.op('Transpose', [b.op('NonZero', [active])], { perm: [1, 0] }, 'active_pairs') // [N, 2]
      const column = (i: number) => b.op('Gather', [index, b.i64([i], [], 'col')], { axis: 1 }) // [N]
      const blockAt = b.op('GatherND', [b.op('ArgMax', [blockMax], { axis: 1, keepdims: 0 }), index]) // [N]
      const firstToken = b.op('Add', [b.op('Mul', [column(0), tokens]), b.op('Mul', [blockAt, block])]) // row * T + block * K
      const k = b.op('Range', [b.i64([0], [], 'zero_scalar'), b.op('Squeeze', [block]), b.i64([1], [], 'one_scalar')])
      const flat = b.op('Add', [
        b.op('Mul', [b.op('Add', [b.unsqueeze(firstToken, [0]), b.unsqueeze(k, [1])]), dim(2)]),
        b.unsqueeze(column(1), [0])
      ]) // [K, N]: positions in x, read as one flat vector
      const values = gatherFlat(b, x, flat, block) // [K, N]
      const offset = b.op('ArgMax', [values], { axis: 0, keepdims: 0 })
      const at = b.op('Add', [b.op('Mul', [blockAt, block]), offset], {}, 'argmax_at') // [N]
      const zeros = b.op('Expand', [b.i64([0], [], 'zero_i64_scalar'), b.op('Shape', [max])])
      return { argmax: b.op('ScatterND', [zeros, index, at]), index, at }
    }
  }
}

/**
 * Reader -> SAE -> masked pooling. Outputs `pooled` float32 [B, S], `argmax` int64 [B, S] (token position of
 * the max; meaningless where the pooled value is 0) and `outliers` int64 [B]. Dense per-token SAE output
 * stays inside the graph.
 */
export function buildPooledGraph(readerBytes: Uint8Array, sae: SaeWeights, opts: PooledGraphOptions): ComposedGraph {
  const stage = readerStage(readerBytes, opts, sae.dIn)
  const { b } = stage
  const outlier = outlierStage(b, tokenNorms(b, stage.hidden), POOL_MASK_INPUT, opts.outlierNormRatio)
  const { outliers } = outlier
  const { keep } = outlier
  const io: PreActivationParts = {}
  const h = preActivations(b, stage.hidden, sae, keep, opts.saeDtype, io)
  const gate = architectureOf(sae).graph(b, h, sae)
  const zero = b.zero()
  let pooled: string
  let argmax: string
  const method = opts.method
  if ((method === 'max' || method === 'binary') && gate.monotone) {
    // f is monotone, so the max over tokens of f(h) is f(max over tokens of h): no per-token activation pass.
    const best = maxOverTokens(b, io.unbiased?.values ?? h)
    let m = io.unbiased ? b.op('Add', [best.max, io.unbiased.bias], {}, 'pooled_pre') : best.max
    let on = gate.isActive(b, m)
    const found = best.argmaxWhere(on)
    argmax = found.argmax
    if (opts.saeDtype === 'int8') {
      m = exactAtArgmax(b, io.input!, sae, m, found.index, found.at)
      on = gate.isActive(b, m)
    }
    pooled = method === 'max' ? b.op('Where', [on, m, zero]) : b.cast(on, DT.FLOAT)
  } else {
    const acts = gate.activations(b, h)
    const best = maxOverTokens(b, acts)
    argmax = best.argmaxWhere(b.op('Greater', [best.max, zero])).argmax
    switch (method) {
      case 'max':
        pooled = best.max
        break
      case 'binary':
        pooled = b.cast(b.op('Greater', [best.max, zero]), DT.FLOAT)
        break
      case 'sum':
        pooled = b.reduce('ReduceSum', acts, [1], false)
        break
      case 'mean': {
        const count = b.op('Max', [b.reduce('ReduceSum', b.cast(keep, DT.FLOAT), [1], true), b.f32([1], [])])
        pooled = b.op('Div', [b.reduce('ReduceSum', acts, [1], false), count])
        break
      }
      case 'count':
        pooled = b.reduce('ReduceSum', b.cast(b.op('Greater', [acts, zero]), DT.FLOAT), [1], false)
        break
      default:
        throw new Error(`pooling method "${String(method)}" is not supported (max, mean, sum, binary, count)`)
    }
  }
  pooled = b.nameLast(pooled, 'pooled')
  argmax = b.nameLast(argmax, 'argmax')
  b.nameLast(outliers, 'outliers')
  const capture = opts.examples
    ? exampleCapture(b, io.unbiased ?? { values: h }, gate, pooled, argmax, opts.examples.halfWindow)
    : null
  if (capture) {
    b.nameLast(b.op('Identity', [capture.index]), 'example_index')
    b.nameLast(capture.acts, 'example_activations')
  }
  return finish(
    stage,
    [
      valueInfo('pooled', DT.FLOAT, ['batch', sae.dSae]),
      valueInfo('argmax', DT.INT64, ['batch', sae.dSae]),
      valueInfo('outliers', DT.INT64, ['batch']),
      ...(capture
        ? [
            valueInfo('example_index', DT.INT64, ['examples', 2]),
            valueInfo('example_activations', DT.FLOAT, ['examples', 2 * opts.examples!.halfWindow + 1])
          ]
        : [])
    ],
    [
      poolMaskInput(),
      ...(capture
        ? [valueInfo(EXAMPLE_THRESHOLD_INPUT, DT.FLOAT, [sae.dSae]), valueInfo(EXAMPLE_ALL_INPUT, DT.FLOAT, ['batch'])]
        : [])
    ]
  )
}

/**
 * Reader -> SAE, per token: `activations` float32 [B, T, S] (every token, masked or not), `norms` float32
 * [B, T] and `pool_mask_out` float32 [B, T] (the pool mask after outlier removal). For re-encoding a few
 * candidate documents only.
 */
export function buildTokenActivationsGraph(
  readerBytes: Uint8Array,
  sae: SaeWeights,
  opts: TokenActivationsGraphOptions
): ComposedGraph {
  const stage = readerStage(readerBytes, opts, sae.dIn)
  const { b } = stage
  const norms = tokenNorms(b, stage.hidden)
  const { keep } = outlierStage(b, norms, POOL_MASK_INPUT, opts.outlierNormRatio)
  const h = preActivations(b, stage.hidden, sae, undefined, opts.saeDtype)
  let acts = architectureOf(sae).graph(b, h, sae).activations(b, h)
  if (opts.selectLatents) {
    // Every latent's largest activation over the pooled tokens, [B, S]: which latents are a text's strongest, found
    // by the same session that then returns their tokens (activations are >= 0, so masked tokens count as 0).
    const kept = b.op('Where', [b.unsqueeze(keep, [-1]), acts, b.zero()], {}, 'acts_pooled_only')
    b.nameLast(b.reduce('ReduceMax', kept, [1], false), 'token_max')
    // Copying [B, T, S] to the host costs as much as the forward pass; mining needs only a few latents per batch.
    acts = b.op('Gather', [acts, LATENT_IDS_INPUT], { axis: 2 }, 'selected')
  }
  b.nameLast(acts, 'activations')
  b.nameLast(b.op('Identity', [norms]), 'norms')
  b.nameLast(b.cast(keep, DT.FLOAT), 'pool_mask_out')
  return finish(
    stage,
    [
      valueInfo('activations', DT.FLOAT, ['batch', 'tokens', opts.selectLatents ? 'latents' : sae.dSae]),
      valueInfo('norms', DT.FLOAT, ['batch', 'tokens']),
      valueInfo('pool_mask_out', DT.FLOAT, ['batch', 'tokens']),
      ...(opts.selectLatents ? [valueInfo('token_max', DT.FLOAT, ['batch', sae.dSae])] : [])
    ],
    opts.selectLatents ? [poolMaskInput(), valueInfo(LATENT_IDS_INPUT, DT.INT64, ['latents'])] : [poolMaskInput()]
  )
}

/**
 * The pruned reader alone, reduced to `hidden_sum` float32 [B] so that timing it measures the forward pass,
 * not a copy of the hidden states to the host.
 */
export function buildReaderOnlyGraph(readerBytes: Uint8Array, opts: ReaderGraphOptions): ComposedGraph {
  const stage = readerStage(readerBytes, opts)
  const { b } = stage
  b.nameLast(b.reduce('ReduceSum', stage.hidden, [1, 2], false), 'hidden_sum')
  return finish(stage, [valueInfo('hidden_sum', DT.FLOAT, ['batch'])], [])
}

/** Validate the reader against the options (output name, rank, d_model, opset) and list the inputs it needs. */
export function checkReader(readerBytes: Uint8Array, opts: ReaderGraphOptions, dIn?: number): GraphInput[] {
  return readerStage(readerBytes, opts, dIn).readerInputs
}
