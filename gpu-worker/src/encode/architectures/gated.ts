/** @module The gated SAE: a gate path x W_enc + b_gate decides which latents fire, a magnitude path x (W_enc exp(r_mag)) + b_mag gives their values. */
import { tensorToFloat32 } from '@latentbase/shared/tensor/safetensors'
import { needed, type ArchitectureEntry, type SaeCommon } from './types.ts'

export interface GatedSae extends SaeCommon {
  architecture: 'gated'
  /** [dSae] log-scale of the magnitude path (its weights are W_enc * exp(r_mag)). */
  rMag: Float32Array
  /** [dSae] the magnitude path's bias. */
  bMag: Float32Array
}

export const gated: ArchitectureEntry<GatedSae> = {
  name: 'gated',
  activationFns: ['relu'],
  decoderNormRescale: false,
  // Gated SAEs have no b_enc: the gate path uses b_gate, the magnitude path r_mag and b_mag.
  saeLens: src => () => ({
    bEnc: tensorToFloat32(src.tensor('b_gate', ['d_sae'])),
    rMag: tensorToFloat32(src.tensor('r_mag', ['d_sae'])),
    bMag: tensorToFloat32(src.tensor('b_mag', ['d_sae']))
  }),
  graph(b, h, sae) {
    // The magnitude path shares W_enc scaled per latent by e = exp(r_mag): with h = x'W + b_gate (the folded
    // pre-activation), x'(W e) + b_mag = e h + (b_mag - e b_gate). No second matrix product.
    const S = sae.dSae
    const e = new Float32Array(S)
    const c = new Float32Array(S)
    for (let s = 0; s < S; s++) {
      const es = Math.exp(sae.rMag[s])
      e[s] = es
      c[s] = sae.bMag[s] - es * sae.bEnc[s]
    }
    const eName = b.f32(e, [S], 'exp_r_mag')
    const cName = b.f32(c, [S], 'mag_bias')
    const mag = b.op('Add', [b.op('Mul', [h, eName]), cName], {}, 'mag_pre')
    return {
      monotone: false,
      isActive: (b, x) => b.op('Greater', [x, b.zero()]),
      activations(b, hh) {
        const value = b.op('Relu', [mag])
        return b.op('Where', [b.op('Greater', [hh, b.zero()]), value, b.zero()], {}, 'acts')
      },
      window(b, hg, at) {
        const magAt = b.op('Add', [b.op('Mul', [hg, at.perLatent(eName)]), at.perLatent(cName)])
        return b.op('Where', [b.op('Greater', [hg, b.zero()]), b.op('Relu', [magAt]), b.zero()])
      }
    }
  },
  reference(sae, pre, x) {
    const { dIn, dSae } = sae
    const rMag = needed(sae.rMag, 'rMag', sae)
    const bMag = needed(sae.bMag, 'bMag', sae)
    const acts = new Float64Array(dSae)
    const margin = new Float64Array(dSae)
    for (let s = 0; s < dSae; s++) {
      const gate = pre[s] + sae.bEnc[s]
      // x (W_enc * exp(r_mag)) + b_mag, written out as the product with the scaled weights
      let mag = bMag[s]
      const e = Math.exp(rMag[s])
      for (let i = 0; i < dIn; i++) mag += x[i] * (sae.wEnc[i * dSae + s] * e)
      acts[s] = gate > 0 ? Math.max(0, mag) : 0
      margin[s] = gate > 0 ? Math.min(Math.abs(gate), Math.abs(mag)) : Math.abs(gate)
    }
    return { acts, margin }
  }
}
