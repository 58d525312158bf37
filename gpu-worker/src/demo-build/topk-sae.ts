/**
 * @module A TopK sparse autoencoder trainer for CPUs: the one dense step (encoder pre-activations and
 * their top-k) runs in onnxruntime, everything after it touches only the k active latents.
 */
import * as ort from 'onnxruntime-node'
import { GraphBuilder, int } from './onnx-graph.ts'
import { xoshiro128 } from '@latentbase/shared/util/random'

/**
 * Parameters in training layout. The encoder is kept transposed ([dSae, dIn], one contiguous row per
 * latent, like the decoder) because the sparse backward pass reads and writes whole latent rows;
 * SAELens' W_enc [dIn, dSae] is its transpose, produced only when saving.
 */
export interface TopKSae {
  dIn: number
  dSae: number
  k: number
  wEncT: Float32Array // [dSae, dIn]
  bEnc: Float32Array // [dSae]
  wDec: Float32Array // [dSae, dIn], rows kept unit-norm during training
  bDec: Float32Array // [dIn]
}

/**
 * Initialization as in Gao et al. 2024 (OpenAI TopK SAEs): b_dec at the data mean so the encoder sees
 * centred inputs from step one, random unit decoder rows, and W_enc = W_dec^T so every latent starts
 * out reconstructing along the direction it detects.
 */
export function initTopKSae(dIn: number, dSae: number, k: number, mean: Float32Array, seed: number): TopKSae {
  const next = xoshiro128(seed)
  const wDec = new Float32Array(dSae * dIn)
  for (let i = 0; i < wDec.length; i++) wDec[i] = 2 * next() - 1
  normalizeRows(wDec, dIn)
  return { dIn, dSae, k, wEncT: wDec.slice(), bEnc: new Float32Array(dSae), wDec, bDec: mean.slice() }
}

export function normalizeRows(w: Float32Array, dIn: number): void {
  for (let off = 0; off < w.length; off += dIn) {
    let n = 0
    for (let d = 0; d < dIn; d++) n += w[off + d] * w[off + d]
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0
    for (let d = 0; d < dIn; d++) w[off + d] *= inv
  }
}

/**
 * The encoder graph: pre = xc W_encT^T + b_enc, then its top-k, and the top-kAux among latents flagged
 * dead (deadBias 0 for dead, -inf for live). Weights are graph inputs, not initializers, so one session
 * serves every training step. Only [n, k] values and indices come back, never the [n, dSae] matrix.
 */
export function buildSaeEncodeGraph(dIn: number, dSae: number): Uint8Array {
  const g = new GraphBuilder()
  const xc = g.input('xc', 'float32', ['n', dIn])
  const wEncT = g.input('w_enc_t', 'float32', [dSae, dIn])
  const bEnc = g.input('b_enc', 'float32', [dSae])
  const deadBias = g.input('dead_bias', 'float32', [dSae])
  const k = g.input('k', 'int64', [1])
  const kAux = g.input('k_aux', 'int64', [1])
  const pre = g.op('Gemm', [xc, wEncT, bEnc], { transB: int(1) })
  g.opMulti('TopK', [pre, k], 2, { axis: int(-1), largest: int(1), sorted: int(1) }, ['top_values', 'top_indices'])
  g.opMulti('TopK', [g.op('Add', [pre, deadBias]), kAux], 2, { axis: int(-1), largest: int(1), sorted: int(1) }, [
    'aux_values',
    'aux_indices'
  ])
  g.output('top_values', 'float32', ['n', 'k'])
  g.output('top_indices', 'int64', ['n', 'k'])
  g.output('aux_values', 'float32', ['n', 'k_aux'])
  g.output('aux_indices', 'int64', ['n', 'k_aux'])
  return g.toModel('topk-sae-encode')
}

/** Top-k of each token's pre-activations (sorted, largest first), with latent ids as plain int32. */
export interface TopK {
  values: Float32Array
  indices: Int32Array
  k: number
}

export class SaeEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly dIn: number,
    readonly dSae: number
  ) {}

  static async create(dIn: number, dSae: number, threads = 2): Promise<SaeEncoder> {
    const session = await ort.InferenceSession.create(buildSaeEncodeGraph(dIn, dSae), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1
    })
    return new SaeEncoder(session, dIn, dSae)
  }

  /** `xc` holds n centred inputs (x - b_dec). `dead` (optional) selects the latents the aux top-k may pick. */
  async encode(
    sae: TopKSae,
    xc: Float32Array,
    n: number,
    dead?: Uint8Array,
    kAux = 0
  ): Promise<{ top: TopK; aux?: TopK }> {
    const deadBias = new Float32Array(this.dSae).fill(-Infinity)
    if (dead && kAux > 0) for (let j = 0; j < this.dSae; j++) if (dead[j]) deadBias[j] = 0
    const result = await this.session.run({
      xc: new ort.Tensor('float32', xc.subarray(0, n * this.dIn), [n, this.dIn]),
      w_enc_t: new ort.Tensor('float32', sae.wEncT, [this.dSae, this.dIn]),
      b_enc: new ort.Tensor('float32', sae.bEnc, [this.dSae]),
      dead_bias: new ort.Tensor('float32', deadBias, [this.dSae]),
      k: new ort.Tensor('int64', BigInt64Array.of(BigInt(sae.k)), [1]),
      // TopK needs k >= 1; with no dead latents the single pick is -inf and ignored below.
      k_aux: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.max(1, kAux))), [1])
    })
    const toTopK = (values: ort.Tensor, indices: ort.Tensor, k: number): TopK => ({
      values: values.data as Float32Array,
      indices: Int32Array.from(indices.data as BigInt64Array, Number),
      k
    })
    const top = toTopK(result.top_values, result.top_indices, sae.k)
    return kAux > 0 ? { top, aux: toTopK(result.aux_values, result.aux_indices, kAux) } : { top }
  }
}

/** Subtracts b_dec from n inputs: what SAELens does with apply_b_dec_to_input. */
export function centre(sae: TopKSae, x: Float32Array, n: number, out = new Float32Array(n * sae.dIn)): Float32Array {
  const { dIn, bDec } = sae
  for (let i = 0; i < n; i++) for (let d = 0; d < dIn; d++) out[i * dIn + d] = x[i * dIn + d] - bDec[d]
  return out
}

/** x_hat = b_dec + sum over the kept latents of ReLU(value) * W_dec[latent], for token i. */
export function reconstruct(sae: TopKSae, top: TopK, i: number, out: Float32Array): void {
  const { dIn, wDec, bDec } = sae
  out.set(bDec)
  for (let a = i * top.k; a < (i + 1) * top.k; a++) {
    const z = top.values[a]
    if (!(z > 0)) continue
    const row = top.indices[a] * dIn
    for (let d = 0; d < dIn; d++) out[d] += z * wDec[row + d]
  }
}

export interface Gradients {
  wEncT: Float32Array
  bEnc: Float32Array
  wDec: Float32Array
  bDec: Float32Array
}

export function zeroGradients(sae: TopKSae): Gradients {
  return {
    wEncT: new Float32Array(sae.wEncT.length),
    bEnc: new Float32Array(sae.dSae),
    wDec: new Float32Array(sae.wDec.length),
    bDec: new Float32Array(sae.dIn)
  }
}

/**
 * Loss and gradients of one batch, touching only active latents:
 *   L = (1/n) sum_i ||x_hat_i - x_i||^2  +  auxAlpha (1/n) sum_i ||e_hat_i - (x_i - x_hat_i)||^2
 * where e_hat_i reconstructs the main residual from the top dead latents only (the AuxK loss of
 * Gao et al.), which gives dead latents a gradient toward what the live ones miss. The residual in
 * the aux term is treated as a constant, and the aux term does not move b_dec, as in their code.
 * Gradients are added into `grads` (the caller zeroes them). Returns both loss terms.
 */
export function accumulateGradients(
  sae: TopKSae,
  x: Float32Array,
  xc: Float32Array,
  n: number,
  top: TopK,
  grads: Gradients,
  aux?: TopK,
  auxAlpha = 1 / 32
): { mse: number; auxMse: number } {
  const { dIn, wEncT, wDec } = sae
  const gWEncT = grads.wEncT,
    gBEnc = grads.bEnc,
    gWDec = grads.wDec
  const xHat = new Float32Array(dIn)
  const g = new Float64Array(dIn) // dL/dx_hat for token i
  const eHat = new Float64Array(dIn)
  // Sum over tokens of dL/dxc: xc = x - b_dec, so b_dec also reaches the loss through the encoder.
  const dxc = new Float64Array(dIn)
  let mse = 0
  let auxMse = 0
  const scale = 2 / n
  // The hot loop of training (n * k * dIn multiply-adds, twice): locals only, no branches inside.
  const backward = (t: TopK, i: number, gradOut: Float64Array, intoBDec: boolean) => {
    const xo = i * dIn
    for (let a = i * t.k; a < (i + 1) * t.k; a++) {
      const z = t.values[a]
      if (!(z > 0)) continue // ReLU: inactive (and -inf) picks carry no gradient
      const latent = t.indices[a]
      const row = latent * dIn
      let dz = 0
      for (let d = 0; d < dIn; d++) {
        dz += wDec[row + d] * gradOut[d]
        gWDec[row + d] += z * gradOut[d]
      }
      gBEnc[latent] += dz
      for (let d = 0; d < dIn; d++) gWEncT[row + d] += dz * xc[xo + d]
      if (intoBDec) for (let d = 0; d < dIn; d++) dxc[d] += dz * wEncT[row + d]
    }
  }
  for (let i = 0; i < n; i++) {
    reconstruct(sae, top, i, xHat)
    for (let d = 0; d < dIn; d++) {
      const e = xHat[d] - x[i * dIn + d]
      mse += e * e
      g[d] = scale * e
      grads.bDec[d] += g[d]
    }
    backward(top, i, g, true)
    if (aux) {
      eHat.fill(0)
      for (let a = i * aux.k; a < (i + 1) * aux.k; a++) {
        const z = aux.values[a]
        if (!(z > 0)) continue
        const row = aux.indices[a] * dIn
        for (let d = 0; d < dIn; d++) eHat[d] += z * wDec[row + d]
      }
      for (let d = 0; d < dIn; d++) {
        const e = eHat[d] - (x[i * dIn + d] - xHat[d])
        auxMse += e * e
        g[d] = auxAlpha * scale * e
      }
      backward(aux, i, g, false)
    }
  }
  for (let d = 0; d < dIn; d++) grads.bDec[d] -= dxc[d]
  return { mse: mse / n, auxMse: auxMse / n }
}

/** Adam over flat parameter buffers, stepped once per batch. */
export class Adam {
  private readonly m: Float32Array[]
  private readonly v: Float32Array[]
  private t = 0
  constructor(
    private readonly params: Float32Array[],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8
  ) {
    this.m = params.map(p => new Float32Array(p.length))
    this.v = params.map(p => new Float32Array(p.length))
  }

  step(grads: Float32Array[], lr: number): void {
    this.t++
    const { beta1, beta2, eps } = this
    const c1 = 1 - beta1 ** this.t
    const c2 = 1 - beta2 ** this.t
    const stepSize = lr / c1
    for (let p = 0; p < this.params.length; p++) {
      const w = this.params[p],
        gr = grads[p],
        m = this.m[p],
        v = this.v[p]
      for (let i = 0; i < w.length; i++) {
        const gi = gr[i]
        const mi = (m[i] = beta1 * m[i] + (1 - beta1) * gi)
        const vi = (v[i] = beta2 * v[i] + (1 - beta2) * gi * gi)
        w[i] -= (stepSize * mi) / (Math.sqrt(vi / c2) + eps)
      }
    }
  }
}
