/** @module What every SAE architecture shares (the weights all of them hold) and what one registry entry must provide. */
import type { TensorEntry } from '@latentbase/shared/tensor/safetensors'
import type { GraphBuilder } from '../graph-builder.ts'
import type { ReferenceSae, ReferenceToken } from './reference.ts'

export type SaeInputNormalization = 'none' | 'constant_norm_rescale' | 'layer_norm'

/** The weights and options every architecture has; each architecture adds its own fields under its own tag. */
export interface SaeCommon {
  dIn: number
  dSae: number
  /** [dIn * dSae], row-major dIn x dSae (x W_enc). */
  wEnc: Float32Array
  /** [dSae] encoder bias; for gated SAEs the gate path's bias b_gate. */
  bEnc: Float32Array
  bDec: Float32Array
  applyBDecToInput: boolean
  normalizeActivations: SaeInputNormalization
  rescaleActsByDecoderNorm: boolean
  /** [dSae] L2 norms of the W_dec rows; present when rescaleActsByDecoderNorm. */
  decoderNorms?: Float32Array
  hookName: string
  contextSize?: number
  prependBos?: boolean
  /** dtype of the stored weights (e.g. "F16"), for reporting. */
  sourceDtype: string
  /** Where the weights came from (saelens, gemma-scope, sparsify, goodfire), for reporting. */
  format?: string
}

/**
 * How activations follow from the folded pre-activations h [.., S] inside the fused graph (h already holds
 * b_enc, the b_dec fold, the decoder-norm rescale and the -1e30 penalty on tokens left out of pooling).
 */
export interface GraphGate {
  /**
   * f(h) is one monotone function per latent, so the max over tokens of f(h) is f(max over tokens of h):
   * max and binary pooling then skip the per-token activation pass.
   */
  readonly monotone: boolean
  /** bool, same shape as `x`: where the activation is non-zero (for gated: where the gate is open). */
  isActive(b: GraphBuilder, x: string): string
  /** The activations [.., S] of pre-activations h [.., S]. */
  activations(b: GraphBuilder, h: string): string
  /** The activations of pre-activations gathered for top-example windows, hg [N, W]. */
  window(b: GraphBuilder, hg: string, at: WindowIndex): string
}

/** Where a top-example window's values came from, for gates that need per-latent or per-token values. */
export interface WindowIndex {
  /** int64 [N, W, 2]: (row, token) of each gathered value. */
  tokenIdx: string
  /** Gathers a per-latent [S] value at each window's latent: [N, 1]. */
  perLatent(value: string): string
}

/** What an SAELens cfg.json / sae_weights.safetensors pair gives an architecture to read its own parts. */
export interface SaeLensSource {
  cfg: Record<string, unknown>
  dSae: number
  /** Throws `cfg.json: msg`. */
  fail(msg: string): never
  /** A positive integer field, failing with its name. */
  posInt(name: string, v: unknown): number
  has(tensor: string): boolean
  /** A tensor by name with its shape checked against named sizes (d_in, d_sae). */
  tensor(name: string, fields: string[]): TensorEntry
}

/** The fields an architecture adds to the common ones, plus its encoder bias (b_enc, or b_gate for gated). */
export type ArchitectureFields<W> = Pick<SaeCommon, 'bEnc'> & Omit<W, keyof SaeCommon | 'architecture'>

/** One SAE architecture: how SAELens files describe it, how the fused graph computes it, and its float64 reference. */
export interface ArchitectureEntry<W extends SaeCommon & { architecture: string }> {
  name: W['architecture']
  /** activation_fn values SAELens configs may give for it. */
  activationFns: readonly string[]
  /** Whether rescale_acts_by_decoder_norm is defined for it. */
  decoderNormRescale: boolean
  /**
   * Reads its SAELens config fields at once (so a config error is reported before any tensor is read) and
   * returns the step that reads its encoder bias and its own tensors (W_enc, W_dec and b_dec are common).
   */
  saeLens(src: SaeLensSource): () => ArchitectureFields<W>
  /** The fused graph's piece: the gate built over pre-activations h [B, T, S]. */
  graph(b: GraphBuilder, h: string, sae: W): GraphGate
  /**
   * The authors' encode in float64 from the pre-activation without bias, pre = x' W_enc (x' normalized and
   * b_dec-shifted as the SAE says), with each latent's margin from its decision boundary.
   */
  reference(sae: ReferenceSae, pre: Float64Array, x: Float64Array): ReferenceToken
}

/** A field an architecture's reference needs, or a clear error. */
export function needed<T>(value: T | undefined, field: string, sae: ReferenceSae): T {
  if (value === undefined) throw new Error(`reference SAE: ${sae.architecture} needs ${field}`)
  return value
}
