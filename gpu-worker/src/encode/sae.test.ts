/** @module Tests of the SAELens loader: v6 and flat configs, F32 / F16 / BF16 tensors, and errors naming the field. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import { toBfloat16Bits, fromBfloat16Bits } from '@latentbase/shared/tensor/float16'
import { loadSaeLens } from './sae.ts'
import { gaussian, rng, writeTinySae } from './test-fixtures.ts'

let dir: string
let n = 0
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-sae-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const D = 8
const S = 24

/** Write cfg + tensors (F32 unless told) into a fresh folder. */
async function folder(
  cfg: Record<string, unknown>,
  tensors?: Record<string, { shape: number[]; data?: Float32Array }>,
  dtype: 'F32' | 'F16' = 'F32'
): Promise<string> {
  const f = join(dir, `sae-${n++}`)
  await mkdir(f, { recursive: true })
  const rand = rng(n)
  const t = tensors ?? {
    W_enc: { shape: [D, S] },
    W_dec: { shape: [S, D] },
    b_enc: { shape: [S] },
    b_dec: { shape: [D] }
  }
  const out: Record<string, { dtype: 'F32' | 'F16'; shape: number[]; data: Float32Array }> = {}
  for (const [name, v] of Object.entries(t))
    out[name] = {
      dtype,
      shape: v.shape,
      data:
        v.data ??
        gaussian(
          rand,
          v.shape.reduce((a, b) => a * b, 1)
        )
    }
  await writeFile(join(f, 'cfg.json'), JSON.stringify(cfg))
  await writeFile(join(f, 'sae_weights.safetensors'), writeSafetensors(out))
  return f
}

const v6 = (extra: Record<string, unknown> = {}) => ({
  d_in: D,
  d_sae: S,
  architecture: 'standard',
  apply_b_dec_to_input: true,
  normalize_activations: 'none',
  metadata: { hook_name: 'blocks.1.hook_resid_post', context_size: 128, prepend_bos: true },
  ...extra
})

test('a v6 config loads into the internal form with float32 weights in the stored layout', async () => {
  const f = join(dir, 'v6-f32')
  const ref = await writeTinySae(f, {
    architecture: 'jumprelu',
    dIn: D,
    dSae: S,
    hookName: 'blocks.3.hook_resid_pre',
    contextSize: 256
  })
  const sae = await loadSaeLens(f)
  assert.equal(sae.architecture, 'jumprelu')
  assert.equal(sae.dIn, D)
  assert.equal(sae.dSae, S)
  assert.equal(sae.hookName, 'blocks.3.hook_resid_pre')
  assert.equal(sae.contextSize, 256)
  assert.equal(sae.prependBos, true)
  assert.equal(sae.sourceDtype, 'F32')
  assert.equal(sae.applyBDecToInput, true)
  assert.equal(sae.normalizeActivations, 'none')
  assert.deepEqual(Array.from(sae.wEnc), Array.from(ref.wEnc))
  assert.deepEqual(Array.from(sae.threshold!), Array.from(ref.threshold!))
  assert.equal(sae.decoderNorms, undefined)
})

test('F16 weights are widened exactly; decoder norms are computed when rescaling is on', async () => {
  const f = join(dir, 'v6-f16')
  const ref = await writeTinySae(
    f,
    { architecture: 'topk', k: 3, dIn: D, dSae: S, rescaleActsByDecoderNorm: true },
    'F16'
  )
  const sae = await loadSaeLens(f)
  assert.equal(sae.sourceDtype, 'F16')
  assert.equal(sae.architecture === 'topk' && sae.k, 3)
  assert.deepEqual(Array.from(sae.wEnc), Array.from(ref.wEnc, Math.fround))
  assert.deepEqual(Array.from(sae.bDec), Array.from(ref.bDec, Math.fround))
  for (let s = 0; s < S; s++) {
    let norm = 0
    for (let i = 0; i < D; i++) norm += ref.wDec[s * D + i] ** 2
    assert.ok(Math.abs(sae.decoderNorms![s] - Math.sqrt(norm)) < 1e-5 * Math.sqrt(norm))
  }
})

test('BF16 tensors load', async () => {
  const f = join(dir, 'bf16')
  await mkdir(f, { recursive: true })
  const rand = rng(3)
  const shapes: Record<string, number[]> = { W_enc: [D, S], W_dec: [S, D], b_enc: [S], b_dec: [D] }
  const header: Record<string, unknown> = {}
  const blobs: Uint8Array[] = []
  const expected: Record<string, number[]> = {}
  let offset = 0
  for (const [name, shape] of Object.entries(shapes)) {
    const values = gaussian(
      rand,
      shape.reduce((a, b) => a * b, 1)
    )
    const bits = Uint16Array.from(values, toBfloat16Bits)
    expected[name] = Array.from(bits, fromBfloat16Bits)
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bits.byteLength] }
    blobs.push(new Uint8Array(bits.buffer))
    offset += bits.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const file = new Uint8Array(8 + json.length + offset)
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true)
  file.set(json, 8)
  let at = 8 + json.length
  for (const b of blobs) {
    file.set(b, at)
    at += b.length
  }
  await writeFile(join(f, 'sae_weights.safetensors'), file)
  await writeFile(join(f, 'cfg.json'), JSON.stringify(v6()))
  const sae = await loadSaeLens(f)
  assert.equal(sae.sourceDtype, 'BF16')
  assert.deepEqual(Array.from(sae.wEnc), expected.W_enc)
  assert.deepEqual(Array.from(sae.bEnc), expected.b_enc)
})

test('older flat configs: hook_point, activation_fn_str topk with kwargs k, missing architecture', async () => {
  const flatTopk = await loadSaeLens(
    await folder({
      d_in: D,
      d_sae: S,
      hook_point: 'blocks.8.hook_resid_pre',
      hook_point_layer: 8,
      context_size: 128,
      activation_fn_str: 'topk',
      activation_fn_kwargs: { k: 5 },
      normalize_activations: 'expected_average_only_in',
      prepend_bos: false
    })
  )
  assert.equal(flatTopk.architecture, 'topk')
  assert.equal(flatTopk.k, 5)
  assert.equal(flatTopk.hookName, 'blocks.8.hook_resid_pre')
  assert.equal(flatTopk.normalizeActivations, 'none')
  assert.equal(flatTopk.prependBos, false)
  assert.equal(flatTopk.contextSize, 128)
  const flatRelu = await loadSaeLens(
    await folder({
      d_in: D,
      d_sae: S,
      hook_name: 'blocks.0.hook_mlp_out',
      activation_fn_str: 'relu',
      apply_b_dec_to_input: false,
      normalize_activations: 'constant_norm_rescale'
    })
  )
  assert.equal(flatRelu.architecture, 'standard')
  assert.equal(flatRelu.applyBDecToInput, false)
  assert.equal(flatRelu.normalizeActivations, 'constant_norm_rescale')
  assert.equal(flatRelu.hookName, 'blocks.0.hook_mlp_out')
  assert.equal(flatRelu.contextSize, undefined)
  const layerNorm = await loadSaeLens(await folder(v6({ normalize_activations: 'layer_norm' })))
  assert.equal(layerNorm.normalizeActivations, 'layer_norm')
})

test('inconsistent or unsupported configs fail naming the field', async () => {
  const cases: Array<[Record<string, unknown>, RegExp, Record<string, { shape: number[] }>?]> = [
    [v6({ d_sae: 4096 }), /cfg\.json: d_sae is 4096 but W_enc has shape \[8, 24\]/],
    [v6({ d_in: 16 }), /cfg\.json: d_in is 16 but W_enc has shape \[8, 24\]/],
    [v6({ d_sae: -1 }), /d_sae must be a positive integer/],
    [v6({ d_in: undefined }), /d_in must be a positive integer, got undefined/],
    [v6({ architecture: 'gated' }), /has no tensor "b_gate"/],
    [v6({ architecture: 'matryoshka' }), /architecture "matryoshka" is not supported/],
    [v6({ architecture: 'topk' }), /k is missing for a topk SAE/],
    [v6({ architecture: 'topk', k: 100 }), /k is 100 but d_sae is only 24/],
    [v6({ architecture: 'jumprelu' }), /has no tensor "threshold"/],
    [v6({ normalize_activations: 'batch_norm' }), /normalize_activations "batch_norm" is not supported/],
    [v6({ apply_b_dec_to_input: 'yes' }), /apply_b_dec_to_input must be true or false/],
    [v6({ metadata: {} }), /metadata\.hook_name .* is missing/],
    [
      v6(),
      /b_dec has shape \[7\]/,
      { W_enc: { shape: [D, S] }, W_dec: { shape: [S, D] }, b_enc: { shape: [S] }, b_dec: { shape: [7] } }
    ],
    [
      v6(),
      /W_dec has shape \[24\], expected \[d_sae, d_in\]/,
      { W_enc: { shape: [D, S] }, W_dec: { shape: [S] }, b_enc: { shape: [S] }, b_dec: { shape: [D] } }
    ],
    [v6(), /has no tensor "b_enc"/, { W_enc: { shape: [D, S] }, W_dec: { shape: [S, D] }, b_dec: { shape: [D] } }]
  ]
  for (const [cfg, pattern, tensors] of cases) {
    await assert.rejects(loadSaeLens(await folder(cfg, tensors)), pattern, JSON.stringify(cfg))
  }
  const empty = join(dir, 'empty')
  await mkdir(empty)
  await assert.rejects(loadSaeLens(empty), /cfg\.json: cannot be read \(ENOENT\)/)
  await writeFile(join(empty, 'cfg.json'), '{ nope')
  await assert.rejects(loadSaeLens(empty), /cfg\.json: not valid JSON/)
})
