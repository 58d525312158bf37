/** @module Checks the TopK SAE trainer: ONNX top-k against JS, sparse gradients against finite differences. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  accumulateGradients,
  centre,
  initTopKSae,
  SaeEncoder,
  zeroGradients,
  type TopK,
  type TopKSae
} from './topk-sae.ts'
import { xoshiro128 } from '@latentbase/shared/util/random'

function randomData(n: number, dIn: number, seed: number): Float32Array {
  const next = xoshiro128(seed)
  return Float32Array.from({ length: n * dIn }, () => 2 * next() - 1)
}

/** Pre-activations in float64, straight from the definition. */
function preActivations(sae: TopKSae, x: Float32Array, i: number): number[] {
  const out: number[] = []
  for (let j = 0; j < sae.dSae; j++) {
    let s = sae.bEnc[j]
    for (let d = 0; d < sae.dIn; d++) s += (x[i * sae.dIn + d] - sae.bDec[d]) * sae.wEncT[j * sae.dIn + d]
    out.push(s)
  }
  return out
}

function jsTopK(values: number[][], k: number, allowed?: (j: number) => boolean): TopK {
  const n = values.length
  const out: TopK = { values: new Float32Array(n * k), indices: new Int32Array(n * k), k }
  values.forEach((row, i) => {
    const order = row
      .map((v, j) => [v, j] as const)
      .filter(([, j]) => !allowed || allowed(j))
      .sort((a, b) => b[0] - a[0])
      .slice(0, k)
    order.forEach(([v, j], a) => {
      out.values[i * k + a] = v
      out.indices[i * k + a] = j
    })
  })
  return out
}

/** x - x_hat of the unperturbed SAE: the aux term treats it as a constant. */
let residual: Float64Array

/** The full loss for fixed latent selections, recomputed from scratch (the finite-difference oracle). */
function lossFor(sae: TopKSae, x: Float32Array, n: number, top: TopK, aux: TopK | undefined, alpha: number): number {
  let total = 0
  for (let i = 0; i < n; i++) {
    const pre = preActivations(sae, x, i)
    const xHat = Array.from(sae.bDec, Number)
    for (let a = 0; a < top.k; a++) {
      const j = top.indices[i * top.k + a]
      const z = Math.max(0, pre[j])
      for (let d = 0; d < sae.dIn; d++) xHat[d] += z * sae.wDec[j * sae.dIn + d]
    }
    for (let d = 0; d < sae.dIn; d++) total += (xHat[d] - x[i * sae.dIn + d]) ** 2 / n
    if (aux) {
      const eHat = new Array<number>(sae.dIn).fill(0)
      for (let a = 0; a < aux.k; a++) {
        const j = aux.indices[i * aux.k + a]
        const z = Math.max(0, pre[j])
        for (let d = 0; d < sae.dIn; d++) eHat[d] += z * sae.wDec[j * sae.dIn + d]
      }
      for (let d = 0; d < sae.dIn; d++) total += (alpha * (eHat[d] - residual[i * sae.dIn + d]) ** 2) / n
    }
  }
  return total
}

test('sparse gradients match finite differences (main and AuxK terms)', () => {
  const dIn = 6,
    dSae = 12,
    k = 3,
    n = 5,
    alpha = 0.25
  const x = randomData(n, dIn, 1)
  const sae = initTopKSae(dIn, dSae, k, new Float32Array(dIn).fill(0.1), 2)
  const next = xoshiro128(3)
  for (let j = 0; j < dSae; j++) sae.bEnc[j] = 0.3 * next()
  const pre = Array.from({ length: n }, (_, i) => preActivations(sae, x, i))
  const top = jsTopK(pre, k)
  const dead = (j: number) => j % 3 === 0
  const aux = jsTopK(pre, 2, dead)
  residual = new Float64Array(n * dIn)
  for (let i = 0; i < n; i++) {
    const xHat = Array.from(sae.bDec, Number)
    for (let a = 0; a < k; a++) {
      const j = top.indices[i * k + a]
      for (let d = 0; d < dIn; d++) xHat[d] += Math.max(0, pre[i][j]) * sae.wDec[j * dIn + d]
    }
    for (let d = 0; d < dIn; d++) residual[i * dIn + d] = x[i * dIn + d] - xHat[d]
  }
  const grads = zeroGradients(sae)
  accumulateGradients(sae, x, centre(sae, x, n), n, top, grads, aux, alpha)

  // b_dec is checked on the main term only: the aux term deliberately does not move it.
  const mainOnly = zeroGradients(sae)
  accumulateGradients(sae, x, centre(sae, x, n), n, top, mainOnly)
  const checks: Array<[string, Float32Array, Float32Array, boolean]> = [
    ['wEncT', sae.wEncT, grads.wEncT, true],
    ['bEnc', sae.bEnc, grads.bEnc, true],
    ['wDec', sae.wDec, grads.wDec, true],
    ['bDec', sae.bDec, mainOnly.bDec, false]
  ]
  let nonZero = 0
  for (const [name, param, grad, withAux] of checks) {
    for (let p = 0; p < param.length; p++) {
      const saved = param[p]
      const h = 1e-3
      param[p] = saved + h
      const up = lossFor(sae, x, n, top, withAux ? aux : undefined, alpha)
      param[p] = saved - h
      const down = lossFor(sae, x, n, top, withAux ? aux : undefined, alpha)
      param[p] = saved
      const numeric = (up - down) / (2 * h)
      assert.ok(
        Math.abs(numeric - grad[p]) < 2e-3 * Math.max(1, Math.abs(numeric)),
        `${name}[${p}]: analytic ${grad[p]} vs numeric ${numeric}`
      )
      if (Math.abs(numeric) > 1e-4) nonZero++
    }
  }
  assert.ok(nonZero > 50, 'the check must exercise non-zero gradients')
})

test('the ONNX encoder returns the same top-k (and dead-only aux top-k) as a JS reference', async () => {
  const dIn = 16,
    dSae = 64,
    k = 4,
    n = 30
  const x = randomData(n, dIn, 5)
  const sae = initTopKSae(dIn, dSae, k, new Float32Array(dIn), 6)
  const encoder = await SaeEncoder.create(dIn, dSae, 1)
  const dead = Uint8Array.from({ length: dSae }, (_, j) => (j % 5 === 0 ? 1 : 0))
  const { top, aux } = await encoder.encode(sae, centre(sae, x, n), n, dead, 3)
  const pre = Array.from({ length: n }, (_, i) => preActivations(sae, x, i))
  const refTop = jsTopK(pre, k)
  const refAux = jsTopK(pre, 3, j => dead[j] === 1)
  assert.deepEqual(top.indices, refTop.indices)
  assert.deepEqual(aux!.indices, refAux.indices)
  for (let a = 0; a < n * k; a++) assert.ok(Math.abs(top.values[a] - refTop.values[a]) < 1e-5)
})
