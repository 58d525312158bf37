/** @module The TopK SAE (SAELens topk, sparsify): per token, keep the k largest of h = x W_enc + b_enc (and above 0). */
import { tensorToFloat32 } from '@latentbase/shared/tensor/safetensors'
import { needed, type ArchitectureEntry, type SaeCommon } from './types.ts'

export interface TopKSae extends SaeCommon {
  architecture: 'topk'
  /** Latents kept per token. */
  k: number
}

type Json = Record<string, unknown>

export const topk: ArchitectureEntry<TopKSae> = {
  name: 'topk',
  activationFns: ['relu', 'topk'],
  decoderNormRescale: true,
  saeLens(src) {
    const cfg = src.cfg
    const kwargs = (
      typeof cfg.activation_fn_kwargs === 'object' && cfg.activation_fn_kwargs !== null ? cfg.activation_fn_kwargs : {}
    ) as Json
    const rawK = cfg.k ?? kwargs.k
    if (rawK === undefined) src.fail('k is missing for a topk SAE (expected "k" or "activation_fn_kwargs.k")')
    const k = src.posInt('k', rawK)
    if (k > src.dSae) src.fail(`k is ${k} but d_sae is only ${src.dSae}`)
    return () => ({ k, bEnc: tensorToFloat32(src.tensor('b_enc', ['d_sae'])) })
  },
  graph(b, h, sae) {
    // The k-th largest value per token is the threshold; ties at it keep more than k latents.
    const [values] = b.node('TopK', [h, b.i64([sae.k], [1], 'k')], { axis: -1, largest: 1, sorted: 1 }, 2, 'topk')
    const kthRaw = b.op('Slice', [values, b.i64([sae.k - 1], [1]), b.i64([sae.k], [1]), b.i64([-1], [1])], {}, 'kth')
    const kth = b.op('Max', [kthRaw, b.zero()])
    return {
      monotone: false,
      isActive: (b, x) => b.op('GreaterOrEqual', [x, kth]),
      activations: (b, hh) => b.op('Where', [b.op('GreaterOrEqual', [hh, kth]), hh, b.zero()], {}, 'acts'),
      window: (b, hg, at) => {
        // The per-token k-th largest value [N, W], at the window's tokens.
        const kthAt = b.op('Squeeze', [b.op('GatherND', [kth, at.tokenIdx]), b.i64([-1], [1], 'axes')])
        return b.op('Where', [b.op('GreaterOrEqual', [hg, kthAt]), hg, b.zero()])
      }
    }
  },
  reference(sae, pre) {
    const { dIn, dSae } = sae
    const h = new Float64Array(dSae)
    for (let s = 0; s < dSae; s++) {
      h[s] = pre[s] + sae.bEnc[s]
      if (sae.rescaleActsByDecoderNorm) {
        const wDec = needed(sae.wDec, 'wDec (rescale_acts_by_decoder_norm)', sae)
        let n = 0
        for (let i = 0; i < dIn; i++) n += wDec[s * dIn + i] ** 2
        h[s] *= Math.sqrt(n)
      }
    }
    const k = needed(sae.k, 'k', sae)
    const acts = new Float64Array(dSae)
    const margin = new Float64Array(dSae)
    // The values: sparsify takes the top k of relu(h), SAELens relu of the top k of h.
    const chosen = sae.reluBeforeTopk ? h.map(v => Math.max(0, v)) : h
    for (const s of Array.from(chosen.keys())
      .sort((a, b) => chosen[b] - chosen[a])
      .slice(0, k))
      acts[s] = Math.max(0, chosen[s])
    // The margins, on h before any ReLU (ties among zeros after a ReLU decide nothing).
    const order = Array.from(h.keys()).sort((a, b) => h[b] - h[a])
    const kth = h[order[k - 1]]
    const next = k < dSae ? h[order[k]] : -Infinity
    // A kept latent would leave if it fell below the (k+1)-th value; a dropped one would enter above the k-th.
    const kept = new Uint8Array(dSae)
    for (const s of order.slice(0, k)) kept[s] = 1
    for (let s = 0; s < dSae; s++) margin[s] = Math.min(kept[s] ? h[s] - next : kth - h[s], Math.abs(h[s]))
    return { acts, margin }
  }
}
