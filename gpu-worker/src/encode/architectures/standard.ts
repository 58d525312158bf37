/** @module The standard (ReLU) SAE: f(x) = ReLU(x W_enc + b_enc). */
import { tensorToFloat32 } from '@latentbase/shared/tensor/safetensors'
import { latentThresholdGate } from './latent-threshold.ts'
import type { ArchitectureEntry, SaeCommon } from './types.ts'

export interface StandardSae extends SaeCommon {
  architecture: 'standard'
}

export const standard: ArchitectureEntry<StandardSae> = {
  name: 'standard',
  activationFns: ['relu'],
  decoderNormRescale: true,
  saeLens: src => () => ({ bEnc: tensorToFloat32(src.tensor('b_enc', ['d_sae'])) }),
  graph: b => latentThresholdGate(b.zero(), false),
  reference(sae, pre) {
    const acts = new Float64Array(sae.dSae)
    const margin = new Float64Array(sae.dSae)
    for (let s = 0; s < sae.dSae; s++) {
      const h = pre[s] + sae.bEnc[s]
      acts[s] = Math.max(0, h)
      margin[s] = Math.abs(h)
    }
    return { acts, margin }
  }
}
