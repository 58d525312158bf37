/** @module The JumpReLU SAE (Gemma Scope; BatchTopK SAEs saved for inference): h = x W_enc + b_enc, f = h where h > threshold, else 0. */
import { tensorToFloat32 } from '@latentbase/shared/tensor/safetensors'
import { latentThresholdGate } from './latent-threshold.ts'
import { needed, type ArchitectureEntry, type SaeCommon } from './types.ts'

export interface JumpReluSae extends SaeCommon {
  architecture: 'jumprelu'
  /** [dSae] per-latent threshold. */
  threshold: Float32Array
}

export const jumprelu: ArchitectureEntry<JumpReluSae> = {
  name: 'jumprelu',
  activationFns: ['relu'],
  decoderNormRescale: true,
  saeLens: src => () => {
    const bEnc = tensorToFloat32(src.tensor('b_enc', ['d_sae']))
    // A JumpReLU training checkpoint holds log_threshold; the inference form (and every release) holds threshold.
    const logThreshold = !src.has('threshold') && src.has('log_threshold')
    const stored = tensorToFloat32(src.tensor(logThreshold ? 'log_threshold' : 'threshold', ['d_sae']))
    return { bEnc, threshold: logThreshold ? stored.map(Math.exp) : stored }
  },
  // A threshold below 0 still leaves ReLU's 0: the graph compares with max(threshold, 0).
  graph: (b, _h, sae) =>
    latentThresholdGate(
      b.f32(
        Float32Array.from(sae.threshold, t => Math.max(t, 0)),
        [sae.dSae],
        'threshold'
      ),
      true
    ),
  reference(sae, pre) {
    const threshold = needed(sae.threshold, 'threshold', sae)
    const acts = new Float64Array(sae.dSae)
    const margin = new Float64Array(sae.dSae)
    for (let s = 0; s < sae.dSae; s++) {
      const h = pre[s] + sae.bEnc[s]
      const t = threshold[s]
      acts[s] = h > t ? Math.max(0, h) : 0
      margin[s] = Math.min(Math.abs(h - t), Math.abs(h))
    }
    return { acts, margin }
  }
}
