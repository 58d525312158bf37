/** @module Conformance of SAELens folders (v6 and pre-6 configs, every architecture, F32/F16/BF16) through the fused graph. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSae } from './index.ts'
import {
  assertConforms,
  assertPooledConforms,
  graphPooled,
  graphTokenActivations,
  harness,
  randomSae,
  referenceTokens,
  safetensorsFile,
  storedValues,
  type Harness,
  type RawSae,
  type StoredDtype
} from './fixtures.ts'
import type { ReferenceSae } from '../architectures/reference.ts'

const D = 32
const S = 128
let dir: string
let h: Harness
let n = 0
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-saelens-'))
  h = harness(D)
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

type Arch = 'standard' | 'jumprelu' | 'topk' | 'gated'

/** Write an SAELens folder the way SAE.save_model does: cfg.json + sae_weights.safetensors. */
async function writeSaeLens(
  raw: RawSae,
  arch: Arch,
  dtype: StoredDtype,
  cfg: Record<string, unknown>,
  tensorsOverride?: string[]
): Promise<string> {
  const f = join(dir, `sae-${n++}`)
  await mkdir(f, { recursive: true })
  const all: Record<string, { shape: number[]; data: Float32Array }> = {
    W_enc: { shape: [D, S], data: raw.wEnc },
    W_dec: { shape: [S, D], data: raw.wDec },
    b_dec: { shape: [D], data: raw.bDec },
    b_enc: { shape: [S], data: raw.bEnc },
    threshold: { shape: [S], data: raw.threshold },
    b_gate: { shape: [S], data: raw.bEnc },
    r_mag: { shape: [S], data: raw.rMag },
    b_mag: { shape: [S], data: raw.bMag },
    log_threshold: { shape: [S], data: raw.threshold }
  }
  const names =
    tensorsOverride ??
    {
      standard: ['W_enc', 'W_dec', 'b_enc', 'b_dec'],
      topk: ['W_enc', 'W_dec', 'b_enc', 'b_dec'],
      jumprelu: ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'],
      gated: ['W_enc', 'W_dec', 'b_gate', 'r_mag', 'b_mag', 'b_dec']
    }[arch]
  const tensors = Object.fromEntries(names.map(name => [name, { dtype, ...all[name] }]))
  await writeFile(join(f, 'cfg.json'), JSON.stringify(cfg, null, 2))
  await writeFile(join(f, 'sae_weights.safetensors'), safetensorsFile(tensors, { format: 'pt' }))
  return f
}

function v6(arch: Arch, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    d_in: D,
    d_sae: S,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    architecture: arch,
    ...(arch === 'topk' ? { k: 8 } : {}),
    metadata: {
      sae_lens_version: '6.5.0',
      model_name: 'tiny',
      hook_name: 'blocks.0.hook_resid_post',
      context_size: 128,
      prepend_bos: true
    },
    ...extra
  }
}

function reference(raw: RawSae, arch: Arch, dtype: StoredDtype | 'exact', o: Partial<ReferenceSae> = {}): ReferenceSae {
  const v = (x: Float32Array) => (dtype === 'exact' ? Float64Array.from(x) : storedValues(dtype, x))
  return {
    architecture: arch,
    dIn: D,
    dSae: S,
    wEnc: v(raw.wEnc),
    bEnc: v(raw.bEnc),
    bDec: v(raw.bDec),
    wDec: v(raw.wDec),
    threshold: v(raw.threshold),
    rMag: v(raw.rMag),
    bMag: v(raw.bMag),
    k: 8,
    applyBDecToInput: true,
    normalize: 'none',
    ...o
  }
}

async function conform(
  label: string,
  folder: string,
  raw: RawSae,
  arch: Arch,
  dtype: StoredDtype,
  o: Partial<ReferenceSae> = {}
) {
  const { sae } = await loadSae('saelens', folder)
  assert.equal(sae.architecture, arch, label)
  assert.equal(sae.sourceDtype, dtype, label)
  const got = await graphTokenActivations(h, sae)
  const stored = referenceTokens(h, reference(raw, arch, dtype, o))
  const unrounded = dtype === 'F32' ? undefined : referenceTokens(h, reference(raw, arch, 'exact', o))
  const report = assertConforms(label, got, stored, S, unrounded)
  return { sae, stored, report }
}

test('SAELens v6, float32: standard, jumprelu, topk with decoder-norm rescaling and gated encode like the reference', async () => {
  const raw = randomSae(D, S, 11)
  await conform('standard', await writeSaeLens(raw, 'standard', 'F32', v6('standard')), raw, 'standard', 'F32')
  await conform('jumprelu', await writeSaeLens(raw, 'jumprelu', 'F32', v6('jumprelu')), raw, 'jumprelu', 'F32')
  await conform('topk', await writeSaeLens(raw, 'topk', 'F32', v6('topk')), raw, 'topk', 'F32')
  const rescaled = await conform(
    'topk rescaled',
    await writeSaeLens(raw, 'topk', 'F32', v6('topk', { rescale_acts_by_decoder_norm: true })),
    raw,
    'topk',
    'F32',
    { rescaleActsByDecoderNorm: true }
  )
  assert.ok(rescaled.sae.decoderNorms)
  const gated = await conform('gated', await writeSaeLens(raw, 'gated', 'F32', v6('gated')), raw, 'gated', 'F32')
  // Gated's value path is not its gate path: pooled max goes through per-token activations.
  assertPooledConforms('gated max', await graphPooled(h, gated.sae, 'max'), gated.stored, h.ids.length, S, 'max')
  assertPooledConforms('gated sum', await graphPooled(h, gated.sae, 'sum'), gated.stored, h.ids.length, S, 'sum')
  assertPooledConforms(
    'topk rescaled max',
    await graphPooled(h, rescaled.sae, 'max'),
    rescaled.stored,
    h.ids.length,
    S,
    'max'
  )
})

test('a gated SAE differs from a standard one with the same W_enc (r_mag and b_mag are used)', async () => {
  const raw = randomSae(D, S, 12)
  const gated = (await loadSae('saelens', await writeSaeLens(raw, 'gated', 'F32', v6('gated')))).sae
  const standardRef = referenceTokens(h, reference(raw, 'standard', 'F32'))
  const got = await graphTokenActivations(h, gated)
  let differ = 0
  standardRef.forEach((t, i) => {
    for (let s = 0; s < S; s++) if (Math.abs(got[i * S + s] - t.acts[s]) > 1e-3) differ++
  })
  assert.ok(differ > 0.05 * standardRef.length * S, `gated matched standard on all but ${differ} pairs`)
})

test('BatchTopK saved as JumpReLU (one threshold copied to every latent) and a batchtopk config with its threshold', async () => {
  const raw = randomSae(D, S, 13)
  raw.threshold.fill(0.45)
  await conform(
    'batchtopk as jumprelu',
    await writeSaeLens(raw, 'jumprelu', 'F32', v6('jumprelu')),
    raw,
    'jumprelu',
    'F32'
  )
  await conform(
    'batchtopk',
    await writeSaeLens(raw, 'jumprelu', 'F32', v6('jumprelu', { architecture: 'batchtopk', k: 16 })),
    raw,
    'jumprelu',
    'F32'
  )
})

test('a JumpReLU training checkpoint with log_threshold instead of threshold', async () => {
  const raw = randomSae(D, S, 18)
  const logged = { ...raw, threshold: raw.threshold.map(Math.log) }
  const folder = await writeSaeLens(logged, 'jumprelu', 'F32', v6('jumprelu'), [
    'W_enc',
    'W_dec',
    'b_enc',
    'b_dec',
    'log_threshold'
  ])
  const { sae } = await loadSae('saelens', folder)
  const got = await graphTokenActivations(h, sae)
  assertConforms(
    'log_threshold',
    got,
    referenceTokens(h, {
      ...reference(raw, 'jumprelu', 'F32'),
      threshold: Float64Array.from(logged.threshold, Math.exp)
    }),
    S
  )
})

test('input normalization (constant_norm_rescale, layer_norm) and apply_b_dec_to_input false', async () => {
  const raw = randomSae(D, S, 14)
  await conform(
    'constant_norm_rescale',
    await writeSaeLens(raw, 'standard', 'F32', v6('standard', { normalize_activations: 'constant_norm_rescale' })),
    raw,
    'standard',
    'F32',
    { normalize: 'constant_norm_rescale' }
  )
  await conform(
    'layer_norm gated',
    await writeSaeLens(raw, 'gated', 'F32', v6('gated', { normalize_activations: 'layer_norm' })),
    raw,
    'gated',
    'F32',
    { normalize: 'layer_norm' }
  )
  await conform(
    'no b_dec',
    await writeSaeLens(raw, 'topk', 'F32', v6('topk', { apply_b_dec_to_input: false })),
    raw,
    'topk',
    'F32',
    { applyBDecToInput: false }
  )
  await conform(
    'expected_average_only_in is folded',
    await writeSaeLens(raw, 'jumprelu', 'F32', v6('jumprelu', { normalize_activations: 'expected_average_only_in' })),
    raw,
    'jumprelu',
    'F32'
  )
})

test('pre-6.0 flat configs: hook_point, activation_fn_str topk + kwargs, expansion_factor, bool normalize_activations', async () => {
  const raw = randomSae(D, S, 15)
  const flat = {
    model_name: 'tiny',
    hook_point: 'blocks.0.hook_resid_post',
    hook_point_layer: 0,
    hook_point_head_index: null,
    d_in: D,
    expansion_factor: S / D,
    activation_fn_str: 'topk',
    activation_fn_kwargs: { k: 8 },
    apply_b_dec_to_input: true,
    normalize_activations: false,
    context_size: 128,
    dtype: 'torch.float32',
    sae_lens_version: '3.13.0'
  }
  const { sae } = await conform('flat topk', await writeSaeLens(raw, 'topk', 'F32', flat), raw, 'topk', 'F32')
  assert.equal(sae.dSae, S)
  assert.equal(sae.hookName, 'blocks.0.hook_resid_post')
  const renamed = {
    ...flat,
    activation_fn_str: undefined,
    activation_fn: 'relu',
    activation_fn_kwargs: {},
    d_sae: S,
    normalize_activations: true
  }
  const relu = await conform(
    'flat relu (activation_fn)',
    await writeSaeLens(raw, 'standard', 'F32', renamed),
    raw,
    'standard',
    'F32'
  )
  assert.equal(
    relu.sae.normalizeActivations,
    'none',
    'normalize_activations true was expected_average_only_in, folded at save time'
  )
})

test('float16 and bfloat16 weights: exact widening, and within 1e-2 of the unrounded SAE with >= 99% active-set agreement', async () => {
  const raw = randomSae(D, S, 16)
  for (const dtype of ['F16', 'BF16'] as const) {
    for (const arch of ['standard', 'jumprelu', 'topk', 'gated'] as const) {
      const folder = await writeSaeLens(raw, arch, dtype, v6(arch, { dtype: dtype === 'F16' ? 'float16' : 'bfloat16' }))
      await conform(`${arch} ${dtype}`, folder, raw, arch, dtype)
    }
  }
})

test('bad SAELens configs fail naming the field and the file', async () => {
  const raw = randomSae(D, S, 17)
  const cases: Array<[Record<string, unknown>, Arch, RegExp, string[]?]> = [
    [
      v6('gated'),
      'gated',
      /sae-\d+\/cfg\.json: sae_weights\.safetensors has no tensor "r_mag"/,
      ['W_enc', 'W_dec', 'b_gate', 'b_mag', 'b_dec']
    ],
    [
      v6('gated', { rescale_acts_by_decoder_norm: true }),
      'gated',
      /cfg\.json: rescale_acts_by_decoder_norm is not defined for a gated SAE/
    ],
    [
      v6('jumprelu', { architecture: 'batchtopk' }),
      'standard',
      /cfg\.json: architecture "batchtopk" needs a "threshold" tensor/
    ],
    [
      v6('standard', { activation_fn: 'tanh-relu' }),
      'standard',
      /cfg\.json: activation_fn_str "tanh-relu" is not supported for a standard SAE/
    ],
    [v6('topk', { k: 0 }), 'topk', /cfg\.json: k must be a positive integer, got 0/],
    [v6('topk', { k: S + 1 }), 'topk', /cfg\.json: k is 129 but d_sae is only 128/],
    [
      v6('standard', { d_sae: undefined, expansion_factor: -2 }),
      'standard',
      /cfg\.json: expansion_factor must be a positive integer, got -2/
    ],
    [
      v6('standard', { architecture: 'crosscoder' }),
      'standard',
      /cfg\.json: architecture "crosscoder" is not supported/
    ],
    [v6('jumprelu', { d_in: 64 }), 'jumprelu', /cfg\.json: d_in is 64 but W_enc has shape \[32, 128\]/]
  ]
  for (const [cfg, arch, pattern, tensors] of cases) {
    await assert.rejects(
      loadSae('saelens', await writeSaeLens(raw, arch, 'F32', cfg, tensors)),
      pattern,
      JSON.stringify(cfg)
    )
  }
  await assert.rejects(
    loadSae('saelens', await writeSaeLens(raw, 'standard', 'F32', v6('standard')), {
      hookName: 'blocks.3.hook_resid_post'
    }),
    /encoder\.json: sae\.hookName is "blocks\.3\.hook_resid_post" but sae-\d+\/cfg\.json says metadata\.hook_name "blocks\.0\.hook_resid_post"/
  )
  await assert.rejects(
    loadSae('saelens', await writeSaeLens(raw, 'standard', 'F32', v6('standard')), { dSae: 64 }),
    /encoder\.json: sae\.dSae is 64 but .*cfg\.json has d_sae 128/
  )
})
