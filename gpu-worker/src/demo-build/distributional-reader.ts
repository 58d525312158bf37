/**
 * @module The demo reader: Llama 2 token vectors learned from co-occurrence statistics (PPMI + SVD, trained by
 * gpu-worker/tools/demo-encoder/train_reader.py) plus a causal context average, written as an ONNX graph with the
 * same contract as a user's reader (inputs input_ids / attention_mask, output hidden_states.1).
 */
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { parseSafetensors } from '@latentbase/shared/tensor/safetensors'
import { FLOAT32_TYPE, GraphBuilder, int, readerPrelude } from './onnx-graph.ts'

/** Constants of the context average, chosen with the SAE (reader.json next to the weights). */
export interface ReaderMixing {
  /** Per-token decay of the causal average: 0.9 weighs the last ~10 tokens. */
  decay: number
  /** Scale of the context half, so its mean norm matches the token half's. */
  gain: number
}

/** Keeps 0/0 (BOS, padding) at 0 instead of NaN. */
export const CONTEXT_EPS = 1e-6
/** The hidden state's name in the graph: hidden_states.0 would be the embedding; this is one mixing step on. */
export const READER_OUTPUT = 'hidden_states.1'
/**
 * Bumped whenever the bytes this builder writes for given weights change (graph layout, tensor order): part of
 * the build key, so installed readers are rebuilt (and the SAE must be retrained: ensure.ts checks the sha256).
 */
export const READER_BUILDER_VERSION = 2

export interface ReaderWeightsFile {
  /** IEEE half bit patterns, [vocab, dim]. */
  vectors: Uint16Array
  /** SIF weight per token, [vocab]. */
  weights: Float32Array
  vocab: number
  dim: number
}

export function parseReaderWeights(bytes: Uint8Array): ReaderWeightsFile {
  const st = parseSafetensors(bytes)
  const v = st.tensors.get('token_vectors')
  const w = st.tensors.get('token_weights')
  if (!v || v.dtype !== 'F16' || v.shape.length !== 2)
    throw new Error('reader weights: need token_vectors, F16 [vocab, dim]')
  if (!w || w.dtype !== 'F32' || w.shape.length !== 1 || w.shape[0] !== v.shape[0])
    throw new Error('reader weights: need token_weights, F32 [vocab]')
  // A copy, aligned and exactly sized (Buffer#slice would share the whole file's memory).
  const copy = (b: Uint8Array) => new Uint8Array(b).buffer
  return {
    vectors: new Uint16Array(copy(v.bytes)),
    weights: new Float32Array(copy(w.bytes)),
    vocab: v.shape[0],
    dim: v.shape[1]
  }
}

/**
 * The reader graph (opset 17). For token t of a right-padded row:
 *   e_t = E[id_t]                                        (float16 table, cast to float32)
 *   c_t = sum_{s<=t} decay^(t-s) w_s e_s / (sum_{s<=t} decay^(t-s) w_s + eps),  w_s = sif[id_s] * mask_s
 *   hidden_states.1[t] = concat(e_t, gain * c_t)         [batch, tokens, 2 * dim]
 * The decayed sums are one [T, T] lower-triangular matrix product, so the graph has no loop; the cost
 * (T^2 * dim per row) is small next to a transformer's.
 */
export function buildDistributionalReader(w: ReaderWeightsFile, mixing: ReaderMixing): Uint8Array {
  const { vocab, dim } = w
  if (!(mixing.decay > 0 && mixing.decay < 1)) throw new Error(`reader: decay must be in (0, 1), got ${mixing.decay}`)
  if (!(mixing.gain > 0)) throw new Error(`reader: gain must be positive, got ${mixing.gain}`)
  const g = new GraphBuilder()
  const { ids, mask, zero, one, axis0, axis1 } = readerPrelude(g)
  const lastAxis = g.int64Tensor('const.axes_last', [-1])

  const table = g.op('Cast', [g.float16Tensor('token_vectors', w.vectors, [vocab, dim])], { to: int(FLOAT32_TYPE) })
  const e = g.op('Gather', [table, ids], { axis: int(0) }) // [B, T, D]
  const maskF = g.op('Cast', [mask], { to: int(FLOAT32_TYPE) })
  const weight = g.op('Mul', [
    g.op('Gather', [g.floatTensor('token_weights', w.weights, [vocab]), ids], { axis: int(0) }),
    maskF
  ]) // [B, T]
  const weight3 = g.op('Unsqueeze', [weight, lastAxis]) // [B, T, 1]

  // decay^(t - s) for s <= t, else 0: the exponent is clamped at 0 first so no power ever overflows.
  const tokens = g.op('Gather', [g.op('Shape', [ids]), one], { axis: int(0) })
  const positions = g.op('Range', [zero, tokens, one])
  const lag = g.op('Sub', [g.op('Unsqueeze', [positions, axis1]), g.op('Unsqueeze', [positions, axis0])]) // [T, T]: t - s
  const future = g.op('Less', [lag, zero])
  const lagF = g.op('Cast', [g.op('Max', [lag, zero])], { to: int(FLOAT32_TYPE) })
  const decay = g.op('Where', [
    future,
    g.scalar('const.zero_f', 0),
    g.op('Pow', [g.scalar('const.decay', mixing.decay), lagF])
  ]) // [T, T]

  const num = g.op('MatMul', [decay, g.op('Mul', [e, weight3])]) // [B, T, D]
  const den = g.op('Add', [g.op('MatMul', [decay, weight3]), g.scalar('const.eps', CONTEXT_EPS)]) // [B, T, 1]
  const context = g.op('Mul', [g.op('Div', [num, den]), g.scalar('const.gain', mixing.gain)])
  const hidden = g.op('Concat', [e, context], { axis: int(-1) }, READER_OUTPUT)
  g.output(hidden, 'float32', ['batch', 'tokens', 2 * dim])
  return g.toModel(
    'latentbase-demo-reader',
    'Distributional reader for the Latentbase demo encoder: PPMI+SVD token vectors and a causal decayed context average (see docs/demo-encoder.md).',
    { decay: String(mixing.decay), gain: String(mixing.gain), builderVersion: String(READER_BUILDER_VERSION) }
  )
}

/** Key of a build: changes when the weights, the mixing constants or the builder change. */
export function distributionalBuildKey(weightsBytes: Uint8Array, mixing: ReaderMixing): string {
  return sha256Hex(`${sha256Hex(weightsBytes)}|${mixing.decay}|${mixing.gain}|${READER_BUILDER_VERSION}`)
}
