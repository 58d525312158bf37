/** @module Conformance of EleutherAI sparsify folders (layers.N/cfg.json + sae.safetensors): TopK, F32 and BF16, transcoders. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hiddenStatesIndex, loadSae, sameHook, sparsifyHook } from './index.ts'
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
  transpose,
  type Harness,
  type RawSae,
  type StoredDtype
} from './fixtures.ts'
import { compareActivations, type ReferenceSae } from '../architectures/reference.ts'

const D = 24
const S = 96
const K = 8
let dir: string
let h: Harness
let n = 0
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-sparsify-'))
  h = harness(D, 9)
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** cfg.json as sparsify's save_to_disk writes it: the SparseCoderConfig fields plus d_in. */
const sparsifyCfg = (extra: Record<string, unknown> = {}) => ({
  activation: 'topk',
  expansion_factor: 32,
  normalize_decoder: true,
  num_latents: S,
  k: K,
  multi_topk: false,
  skip_connection: false,
  transcode: false,
  d_in: D,
  ...extra
})

/** A training run folder: config.json (ctx_len) and one hook folder with cfg.json + sae.safetensors (nn.Linear layout). */
async function writeSparsify(
  raw: RawSae,
  dtype: StoredDtype,
  cfg: Record<string, unknown>,
  o: { hook?: string; drop?: string; encShape?: number[] } = {}
): Promise<string> {
  const run = join(dir, `run-${n++}`)
  const folder = join(run, o.hook ?? 'layers.0')
  await mkdir(folder, { recursive: true })
  await writeFile(join(run, 'config.json'), JSON.stringify({ model: 'tiny', ctx_len: 512, batch_size: 32 }))
  await writeFile(join(folder, 'cfg.json'), JSON.stringify(cfg))
  const tensors: Record<string, { dtype: StoredDtype; shape: number[]; data: Float32Array }> = {
    'encoder.weight': {
      dtype,
      shape: o.encShape ?? [S, D],
      data: transpose(raw.wEnc, D, S).subarray(0, o.encShape ? o.encShape[0] * o.encShape[1] : S * D)
    },
    'encoder.bias': { dtype, shape: [S], data: raw.bEnc },
    W_dec: { dtype, shape: [S, D], data: raw.wDec },
    b_dec: { dtype, shape: [D], data: raw.bDec }
  }
  if (o.drop) delete tensors[o.drop]
  await writeFile(join(folder, 'sae.safetensors'), safetensorsFile(tensors))
  return folder
}

function reference(raw: RawSae, dtype: StoredDtype | 'exact', o: Partial<ReferenceSae> = {}): ReferenceSae {
  const v = (x: Float32Array) => (dtype === 'exact' ? Float64Array.from(x) : storedValues(dtype, x))
  // sparsify: pre_acts = relu((x - b_dec) @ encoder.weight.T + encoder.bias); top-k of those.
  return {
    architecture: 'topk',
    dIn: D,
    dSae: S,
    k: K,
    wEnc: v(raw.wEnc),
    bEnc: v(raw.bEnc),
    bDec: v(raw.bDec),
    applyBDecToInput: true,
    normalize: 'none',
    reluBeforeTopk: true,
    ...o
  }
}

test('layers.N is the residual stream after block N: hidden_states[N + 1]', () => {
  assert.equal(sparsifyHook('layers.6'), 'blocks.6.hook_resid_post')
  assert.equal(sparsifyHook('layers_6'), 'blocks.6.hook_resid_post')
  assert.equal(sparsifyHook('embed_tokens'), 'hook_embed')
  assert.equal(sparsifyHook('layers.6.mlp'), null)
  assert.equal(hiddenStatesIndex('layers.6'), 7)
  assert.equal(hiddenStatesIndex('blocks.6.hook_resid_post'), 7)
  assert.equal(hiddenStatesIndex('blocks.7.hook_resid_pre'), 7)
  assert.equal(hiddenStatesIndex('blocks.6.hook_mlp_out'), null)
  assert.ok(sameHook('layers.6', 'blocks.7.hook_resid_pre'))
  assert.ok(!sameHook('layers.6', 'blocks.6.hook_resid_pre'))
  assert.ok(!sameHook('blocks.6.hook_mlp_out', 'blocks.6.hook_attn_out'))
})

test('sparsify TopK (F32 and BF16) encodes like the reference: b_dec subtracted, ReLU then top-k', async () => {
  const raw = randomSae(D, S, 31)
  for (const dtype of ['F32', 'BF16'] as const) {
    const { sae, files } = await loadSae('sparsify', await writeSparsify(raw, dtype, sparsifyCfg()))
    assert.equal(sae.architecture, 'topk')
    assert.equal(sae.k, K)
    assert.equal(sae.hookName, 'blocks.0.hook_resid_post')
    assert.equal(sae.contextSize, 512, 'ctx_len of the run config')
    assert.equal(sae.sourceDtype, dtype)
    assert.deepEqual(
      files.map(f => f.role),
      ['saeCfg', 'saeWeights']
    )
    const ref = referenceTokens(h, reference(raw, dtype))
    const got = await graphTokenActivations(h, sae)
    assertConforms(
      `sparsify ${dtype}`,
      got,
      ref,
      S,
      dtype === 'F32' ? undefined : referenceTokens(h, reference(raw, 'exact'))
    )
    // ReLU before top-k (sparsify) and after (SAELens) keep the same values.
    assertConforms(
      `sparsify ${dtype} vs relu after top-k`,
      got,
      referenceTokens(h, reference(raw, dtype, { reluBeforeTopk: false })),
      S
    )
    if (dtype === 'F32')
      assertPooledConforms('sparsify max', await graphPooled(h, sae, 'max'), ref, h.ids.length, S, 'max')
  }
})

test('older cfg.json: num_latents 0 with expansion_factor, no d_in (taken from encoder.weight), no activation key', async () => {
  const raw = randomSae(D, S, 32)
  const { d_in: _dIn, activation: _a, transcode: _t, ...old } = sparsifyCfg({ num_latents: 0, expansion_factor: S / D })
  const { sae } = await loadSae('sparsify', await writeSparsify(raw, 'F32', old))
  assert.equal(sae.dIn, D)
  assert.equal(sae.dSae, S)
  assertConforms('older cfg', await graphTokenActivations(h, sae), referenceTokens(h, reference(raw, 'F32')), S)
})

test('a transcoder (transcode: true) does not subtract b_dec from its input', async () => {
  const raw = randomSae(D, S, 33)
  const { sae } = await loadSae('sparsify', await writeSparsify(raw, 'F32', sparsifyCfg({ transcode: true })))
  const got = await graphTokenActivations(h, sae)
  assertConforms('transcoder', got, referenceTokens(h, reference(raw, 'F32', { applyBDecToInput: false })), S)
  assert.ok(compareActivations(got, referenceTokens(h, reference(raw, 'F32')), S, 1e-4).worst > 1e-2)
})

test('bad sparsify folders fail naming the field and the file', async () => {
  const raw = randomSae(D, S, 34)
  const cases: Array<[Record<string, unknown>, RegExp, { hook?: string; drop?: string; encShape?: number[] }?]> = [
    [sparsifyCfg({ activation: 'groupmax' }), /layers\.0\/cfg\.json: activation "groupmax" is not supported/],
    [sparsifyCfg({ k: S + 1 }), /cfg\.json: k is 97 but num_latents is only 96/],
    [sparsifyCfg({ k: 0 }), /cfg\.json: k must be a positive integer, got 0/],
    [sparsifyCfg({ num_latents: -5 }), /cfg\.json: num_latents must be a positive integer, got -5/],
    [sparsifyCfg({ d_in: 32 }), /cfg\.json: d_in is 32 but encoder\.weight has shape \[96, 24\]/],
    [sparsifyCfg({ signed: true }), /cfg\.json: signed is true/],
    [sparsifyCfg(), /sae\.safetensors has no tensor "b_dec"/, { drop: 'b_dec' }],
    [sparsifyCfg(), /cfg\.json: num_latents is 96 but encoder\.weight has shape \[95, 24\]/, { encShape: [95, D] }],
    [sparsifyCfg(), /sae\.hookName is required: the sparsify folder name "layers\.0\.mlp"/, { hook: 'layers.0.mlp' }]
  ]
  for (const [cfg, pattern, o] of cases) {
    await assert.rejects(loadSae('sparsify', await writeSparsify(raw, 'F32', cfg, o)), pattern, JSON.stringify(cfg))
  }
  const mlp = await loadSae('sparsify', await writeSparsify(raw, 'F32', sparsifyCfg(), { hook: 'layers.0.mlp' }), {
    hookName: 'blocks.0.hook_mlp_out'
  })
  assert.equal(mlp.sae.hookName, 'blocks.0.hook_mlp_out')
  await assert.rejects(
    loadSae('sparsify', await writeSparsify(raw, 'F32', sparsifyCfg(), { hook: 'layers.3' }), {
      hookName: 'blocks.5.hook_resid_post'
    }),
    /sae\.hookName is "blocks\.5\.hook_resid_post" but the sparsify folder layers\.3 is blocks\.3\.hook_resid_post/
  )
})
