/** @module Test-only float64 reference encode (the input steps every architecture shares, then each registry entry's own reference) and the comparison rule. */
import { SAE_ARCHITECTURES, type SaeArchitecture } from './index.ts'

/** An SAE as its authors' code holds it, in float64 and in the authors' own layout conventions. */
export interface ReferenceSae {
  architecture: SaeArchitecture
  dIn: number
  dSae: number
  /** [dIn * dSae], x W_enc (SAELens / Gemma Scope layout). */
  wEnc: Float64Array
  /** standard, jumprelu, topk: b_enc; gated: b_gate. */
  bEnc: Float64Array
  bDec: Float64Array
  /** [dSae * dIn], needed for rescale_acts_by_decoder_norm. */
  wDec?: Float64Array
  threshold?: Float64Array
  k?: number
  rMag?: Float64Array
  bMag?: Float64Array
  applyBDecToInput: boolean
  normalize: 'none' | 'constant_norm_rescale' | 'layer_norm'
  rescaleActsByDecoderNorm?: boolean
  /** sparsify applies ReLU before top-k (SAELens after); the values kept are the same, the test shows it. */
  reluBeforeTopk?: boolean
}

export interface ReferenceToken {
  acts: Float64Array
  /**
   * Per latent, how far the decision (active or not) is from flipping, in the decision quantity's own units:
   * |h - threshold| (jumprelu), |h| (standard), h - (k+1)th for a kept latent and kth - h for a dropped one
   * (topk), |gate pre| (gated); and |h| wherever a ReLU follows.
   */
  margin: Float64Array
}

/** Encode one token (SAELens encode; the other formats are expressed as its options): the shared input steps, then the architecture's own. */
export function referenceEncode(sae: ReferenceSae, input: ArrayLike<number>): ReferenceToken {
  const { dIn, dSae } = sae
  let x = Float64Array.from(input)
  if (sae.normalize === 'constant_norm_rescale') {
    const norm = Math.sqrt(x.reduce((a, v) => a + v * v, 0))
    x = x.map(v => (v * Math.sqrt(dIn)) / norm)
  } else if (sae.normalize === 'layer_norm') {
    const mean = x.reduce((a, v) => a + v, 0) / dIn
    const std = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / (dIn - 1)) // torch.std: unbiased
    x = x.map(v => (v - mean) / (std + 1e-5))
  }
  if (sae.applyBDecToInput) x = x.map((v, i) => v - sae.bDec[i])
  const pre = new Float64Array(dSae)
  for (let s = 0; s < dSae; s++) {
    let acc = 0
    for (let i = 0; i < dIn; i++) acc += x[i] * sae.wEnc[i * dSae + s]
    pre[s] = acc
  }
  return SAE_ARCHITECTURES[sae.architecture].reference(sae, pre, x)
}

export interface Comparison {
  compared: number
  /** Token-latent pairs left out because the reference sits within epsilon of a decision boundary. */
  excluded: number
  /** Largest |got - want| / scale over the compared pairs. */
  worst: number
  /** Pairs active in exactly one of got / want, and pairs active in either (all pairs, excluded ones too). */
  activeDisagreement: number
  activeEither: number
}

/**
 * Compare per-token activations [N, S] with the reference: the error is measured relative to each latent's
 * largest reference activation over all tokens; pairs whose decision margin is below `epsilon` times that
 * scale are excluded and counted, since float32 rounding may legitimately flip them.
 */
export function compareActivations(
  got: Float32Array,
  want: ReferenceToken[],
  dSae: number,
  epsilon: number
): Comparison {
  const scale = new Float64Array(dSae).fill(1e-6)
  for (const t of want) for (let s = 0; s < dSae; s++) scale[s] = Math.max(scale[s], t.acts[s])
  // A latent that never fires still needs a scale for its margin: use the overall largest activation.
  let overall = 0
  for (const v of scale) if (v > overall) overall = v
  const out: Comparison = { compared: 0, excluded: 0, worst: 0, activeDisagreement: 0, activeEither: 0 }
  want.forEach((t, n) => {
    for (let s = 0; s < dSae; s++) {
      const sc = scale[s] > 1e-6 ? scale[s] : overall
      const g = got[n * dSae + s]
      const w = t.acts[s]
      const ga = g > 0
      const wa = w > 0
      if (ga || wa) out.activeEither++
      if (ga !== wa) out.activeDisagreement++
      if (t.margin[s] < epsilon * sc) {
        out.excluded++
        continue
      }
      out.compared++
      out.worst = Math.max(out.worst, Math.abs(g - w) / sc)
    }
  })
  return out
}
