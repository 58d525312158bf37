/** @module Every registered SAE architecture: its fused-graph gate against its float64 reference on random weights, per token and pooled. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSafetensors } from '@latentbase/shared/tensor/safetensors'
import { saeFromSaeLens } from '../sae.ts'
import {
  assertConforms,
  assertPooledConforms,
  graphPooled,
  graphTokenActivations,
  harness,
  randomSae,
  referenceTokens,
  safetensorsFile
} from '../formats/fixtures.ts'
import { SAE_ARCHITECTURES, architectureOf, isSaeArchitecture } from './index.ts'
import type { ReferenceSae } from './reference.ts'

const D = 32
const S = 96
const K = 8
const h = harness(D, 11)

/** One SAELens file pair holding every tensor any architecture reads, so each entry picks its own by name. */
function saeLensPair(name: string, seed: number) {
  const raw = randomSae(D, S, seed)
  const st = parseSafetensors(
    safetensorsFile({
      W_enc: { dtype: 'F32', shape: [D, S], data: raw.wEnc },
      W_dec: { dtype: 'F32', shape: [S, D], data: raw.wDec },
      b_dec: { dtype: 'F32', shape: [D], data: raw.bDec },
      b_enc: { dtype: 'F32', shape: [S], data: raw.bEnc },
      b_gate: { dtype: 'F32', shape: [S], data: raw.bEnc },
      threshold: { dtype: 'F32', shape: [S], data: raw.threshold },
      r_mag: { dtype: 'F32', shape: [S], data: raw.rMag },
      b_mag: { dtype: 'F32', shape: [S], data: raw.bMag }
    })
  )
  const cfg = {
    d_in: D,
    d_sae: S,
    architecture: name,
    k: K,
    apply_b_dec_to_input: true,
    metadata: { hook_name: 'blocks.0.hook_resid_post' }
  }
  const reference: ReferenceSae = {
    architecture: name as ReferenceSae['architecture'],
    dIn: D,
    dSae: S,
    k: K,
    wEnc: Float64Array.from(raw.wEnc),
    bEnc: Float64Array.from(raw.bEnc),
    bDec: Float64Array.from(raw.bDec),
    wDec: Float64Array.from(raw.wDec),
    threshold: Float64Array.from(raw.threshold),
    rMag: Float64Array.from(raw.rMag),
    bMag: Float64Array.from(raw.bMag),
    applyBDecToInput: true,
    normalize: 'none'
  }
  return { sae: saeFromSaeLens(cfg, st), reference }
}

test('the registry lists standard, topk, jumprelu and gated, each under its own name', () => {
  assert.deepEqual(Object.keys(SAE_ARCHITECTURES), ['standard', 'topk', 'jumprelu', 'gated'])
  for (const [name, entry] of Object.entries(SAE_ARCHITECTURES)) assert.equal(entry.name, name)
  assert.ok(isSaeArchitecture('topk') && !isSaeArchitecture('crosscoder') && !isSaeArchitecture('toString'))
})

let seed = 40
for (const name of Object.keys(SAE_ARCHITECTURES)) {
  test(`${name}: the fused graph's activations and pools match the float64 reference on random weights`, async () => {
    const { sae, reference } = saeLensPair(name, seed++)
    assert.equal(sae.architecture, name)
    assert.equal(architectureOf(sae).name, name)
    const want = referenceTokens(h, reference)
    assertConforms(name, await graphTokenActivations(h, sae), want, S)
    for (const method of ['max', 'sum'] as const) {
      assertPooledConforms(`${name}/${method}`, await graphPooled(h, sae, method), want, h.ids.length, S, method)
    }
  })
}
