/** @module Conformance of Gemma Scope SAEs: params.npz (stored and deflated zips) and Gemma Scope 2 params.safetensors + config.json. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadSae, gemmaScopeHookFromPath, gemmaScope2HookFromPath } from './index.ts'
import {
  assertConforms,
  graphPooled,
  graphTokenActivations,
  harness,
  npyFile,
  randomSae,
  referenceTokens,
  safetensorsFile,
  storedValues,
  zipFile,
  assertPooledConforms,
  type Harness,
  type RawSae,
  type StoredDtype
} from './fixtures.ts'
import { compareActivations, type ReferenceSae } from '../architectures/reference.ts'

const D = 24
const S = 96
let dir: string
let h: Harness
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-gemmascope-'))
  h = harness(D, 8)
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** params.npz as np.savez (stored) or np.savez_compressed (deflated) writes it, from Gemma Scope's five arrays. */
async function writeNpz(
  rel: string,
  raw: RawSae,
  method: 0 | 8,
  opts: { drop?: string; shapes?: Record<string, number[]>; lower?: boolean } = {}
): Promise<string> {
  const path = join(dir, rel)
  await mkdir(dirname(path), { recursive: true })
  const arrays: Record<string, [Float32Array, number[]]> = {
    W_enc: [raw.wEnc, [D, S]],
    W_dec: [raw.wDec, [S, D]],
    b_enc: [raw.bEnc, [S]],
    b_dec: [raw.bDec, [D]],
    threshold: [raw.threshold, [S]]
  }
  const entries = Object.entries(arrays)
    .filter(([k]) => k !== opts.drop)
    .map(([k, [data, shape]]) => ({
      name: `${opts.lower ? k.replace(/^W_/, 'w_') : k}.npy`,
      data: npyFile(data, opts.shapes?.[k] ?? shape)
    }))
  await writeFile(path, zipFile(entries, method))
  return path
}

/** Gemma Scope 2 folder: params.safetensors (lowercase w_enc / w_dec) + config.json. */
async function writeScope2(
  rel: string,
  raw: RawSae,
  dtype: StoredDtype,
  config: Record<string, unknown> | null
): Promise<string> {
  const folder = join(dir, rel)
  await mkdir(folder, { recursive: true })
  await writeFile(
    join(folder, 'params.safetensors'),
    safetensorsFile({
      w_enc: { dtype, shape: [D, S], data: raw.wEnc },
      w_dec: { dtype, shape: [S, D], data: raw.wDec },
      b_enc: { dtype, shape: [S], data: raw.bEnc },
      b_dec: { dtype, shape: [D], data: raw.bDec },
      threshold: { dtype, shape: [S], data: raw.threshold }
    })
  )
  if (config) await writeFile(join(folder, 'config.json'), JSON.stringify(config))
  return folder
}

function reference(raw: RawSae, dtype: StoredDtype | 'exact', o: Partial<ReferenceSae> = {}): ReferenceSae {
  const v = (x: Float32Array) => (dtype === 'exact' ? Float64Array.from(x) : storedValues(dtype, x))
  // google/gemma-scope's JumpReLUSAE: pre = x W_enc + b_enc, mask (pre > threshold) * relu(pre); no b_dec on the input.
  return {
    architecture: 'jumprelu',
    dIn: D,
    dSae: S,
    wEnc: v(raw.wEnc),
    bEnc: v(raw.bEnc),
    bDec: v(raw.bDec),
    threshold: v(raw.threshold),
    applyBDecToInput: false,
    normalize: 'none',
    ...o
  }
}

test('hook names from the hub layout: site from the repository, layer from the folder', () => {
  assert.equal(
    gemmaScopeHookFromPath('google/gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz'),
    'blocks.12.hook_resid_post'
  )
  assert.equal(
    gemmaScopeHookFromPath('cache/google/gemma-scope-9b-pt-mlp@abc123/layer_3/width_131k/average_l0_10/params.npz'),
    'blocks.3.hook_mlp_out'
  )
  assert.equal(
    gemmaScopeHookFromPath('google/gemma-scope-2b-pt-att/layer_0/width_16k/average_l0_104/params.npz'),
    'blocks.0.attn.hook_z'
  )
  assert.equal(
    gemmaScopeHookFromPath('google/gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6/params.npz'),
    'hook_embed'
  )
  assert.equal(gemmaScopeHookFromPath('saes/layer_12/params.npz'), null)
  assert.equal(
    gemmaScope2HookFromPath('gemma-scope-2-1b-pt/resid_post_all/layer_7_width_16k_l0_small/params.safetensors'),
    'blocks.7.hook_resid_post'
  )
  assert.equal(
    gemmaScope2HookFromPath('gemma-scope-2-1b-it/transcoder/layer_7_width_16k_l0_small/params.safetensors'),
    null
  )
})

test('Gemma Scope params.npz, stored and deflated, encodes like the reference; b_dec is not subtracted', async () => {
  const raw = randomSae(D, S, 21)
  const stored = await writeNpz('google/gemma-scope-2b-pt-res/layer_0/width_16k/average_l0_5/params.npz', raw, 0)
  const deflated = await writeNpz('mine/params.npz', raw, 8)
  const fromPath = await loadSae('gemma-scope', dirname(stored))
  assert.equal(fromPath.sae.hookName, 'blocks.0.hook_resid_post')
  assert.equal(fromPath.sae.applyBDecToInput, false)
  assert.equal(fromPath.sae.architecture, 'jumprelu')
  assert.deepEqual(
    fromPath.files.map(f => f.role),
    ['saeWeights']
  )
  const fromRef = await loadSae('gemma-scope', deflated, { hookName: 'blocks.0.hook_resid_post', dIn: D, dSae: S })
  const ref = referenceTokens(h, reference(raw, 'F32'))
  for (const [label, loaded] of [
    ['stored', fromPath],
    ['deflated', fromRef]
  ] as const) {
    const got = await graphTokenActivations(h, loaded.sae)
    assertConforms(`npz ${label}`, got, ref, S)
    const withBDec = compareActivations(
      got,
      referenceTokens(h, reference(raw, 'F32', { applyBDecToInput: true })),
      S,
      1e-4
    )
    assert.ok(withBDec.worst > 1e-2, 'subtracting b_dec would have given other activations')
  }
  assertPooledConforms('npz max', await graphPooled(h, fromRef.sae, 'max'), ref, h.ids.length, S, 'max')
})

test('an embedding SAE divides W_enc by sqrt(d_model), as SAELens does for Gemma Scope embedding SAEs', async () => {
  const raw = randomSae(D, S, 22)
  const path = await writeNpz('google/gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6/params.npz', raw, 0)
  const { sae } = await loadSae('gemma-scope', path)
  assert.equal(sae.hookName, 'hook_embed')
  const scaled = Float64Array.from(raw.wEnc, w => w / Math.sqrt(D))
  assertConforms(
    'embedding',
    await graphTokenActivations(h, sae),
    referenceTokens(h, { ...reference(raw, 'F32'), wEnc: scaled }),
    S
  )
})

test('Gemma Scope 2 params.safetensors + config.json (lowercase w_enc), F32 and BF16', async () => {
  const raw = randomSae(D, S, 23)
  const config = {
    architecture: 'jump_relu',
    model_name: 'gemma-v3-1b-pt',
    hf_hook_point_in: 'model.layers.0.output',
    width: S,
    l0: 'small'
  }
  for (const dtype of ['F32', 'BF16'] as const) {
    const folder = await writeScope2(
      `gemma-scope-2-1b-pt-${dtype}/resid_post/layer_0_width_16k_l0_small`,
      raw,
      dtype,
      config
    )
    const { sae, files } = await loadSae('gemma-scope', folder)
    assert.equal(sae.hookName, 'blocks.0.hook_resid_post')
    assert.deepEqual(
      files.map(f => f.role),
      ['saeCfg', 'saeWeights']
    )
    assert.equal(sae.sourceDtype, dtype)
    assertConforms(
      `scope 2 ${dtype}`,
      await graphTokenActivations(h, sae),
      referenceTokens(h, reference(raw, dtype)),
      S,
      dtype === 'F32' ? undefined : referenceTokens(h, reference(raw, 'exact'))
    )
  }
})

test('bad Gemma Scope files fail naming the file and the field', async () => {
  const raw = randomSae(D, S, 24)
  await assert.rejects(
    loadSae('gemma-scope', await writeNpz('a/layer_0/params.npz', raw, 0)),
    /encoder\.json: sae\.hookName is required for .*params\.npz/
  )
  await assert.rejects(
    loadSae('gemma-scope', await writeNpz('b/params.npz', raw, 8, { drop: 'threshold' }), { hookName: 'x' }),
    /b\/params\.npz has no tensor "threshold"/
  )
  await assert.rejects(
    loadSae('gemma-scope', await writeNpz('c/params.npz', raw, 0, { shapes: { W_dec: [S, D - 1] }, lower: true }), {
      hookName: 'x'
    }),
    /params\.npz: d_in is 24 but w_dec has shape \[96, 23\]/
  )
  await assert.rejects(
    loadSae(
      'gemma-scope',
      await writeNpz('google/gemma-scope-2b-pt-res/layer_3/width_16k/average_l0_5/params.npz', raw, 0),
      { hookName: 'blocks.4.hook_resid_post' }
    ),
    /sae\.hookName is "blocks\.4\.hook_resid_post" but the path .* is that of blocks\.3\.hook_resid_post/
  )
  await assert.rejects(
    loadSae('gemma-scope', await writeNpz('d/params.npz', raw, 0), { hookName: 'x', dSae: 16384 }),
    /sae\.dSae is 16384 but .*has d_sae 96/
  )
  await assert.rejects(
    loadSae(
      'gemma-scope',
      await writeScope2('e/resid_post/layer_1_width_16k_l0_big', raw, 'F32', { architecture: 'topk' })
    ),
    /config\.json: architecture "topk" is not a Gemma Scope 2 SAE \(jump_relu\)/
  )
  const truncated = await writeNpz('f/params.npz', raw, 8)
  await writeFile(truncated, (await readFile(truncated)).subarray(0, 300))
  await assert.rejects(loadSae('gemma-scope', truncated, { hookName: 'x' }), /f\/params\.npz: not a zip archive/)
  await mkdir(join(dir, 'empty'))
  await assert.rejects(
    loadSae('gemma-scope', join(dir, 'empty')),
    /empty: has neither params\.npz .* nor params\.safetensors/
  )
})
