/** @module Every SAE format through loadEncoder (encoder.json sae.format dispatch) and a pooling session, against the reference. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadEncoder } from '../runtime.ts'
import { buildTinyReader, referenceHidden, type TinyReader, llamaModelsDir } from '../test-fixtures.ts'
import { npyFile, randomSae, safetensorsFile, transpose, zipFile, type RawSae } from './fixtures.ts'
import { referenceEncode, type ReferenceSae } from '../architectures/reference.ts'

const D = 16
const S = 64
const quiet = { log: () => {}, intraOpNumThreads: 1 }
let root: string
let reader: TinyReader
let raw: RawSae
let n = 0
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-formats-rt-'))
  reader = buildTinyReader({ vocab: 32000, d: D, unusedWidth: 8, seed: 3 })
  raw = randomSae(D, S, 51)
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

/** An encoder folder with the SAE files `files` (relative path -> bytes) and encoder.json's `sae` entry. */
/** `hookName` null: a minimal encoder.json (no reader inputs, output or hook: the graph and the SAE say them). */
async function encoderFolder(
  hookName: string | null,
  sae: Record<string, unknown>,
  files: Record<string, Uint8Array | string>,
  maxTokens: number | null = 32
): Promise<string> {
  const f = join(root, `enc-${n++}`)
  await mkdir(join(f, 'tokenizer'), { recursive: true })
  const models = llamaModelsDir()
  await copyFile(join(models, 'tokenizer.json'), join(f, 'tokenizer', 'tokenizer.json'))
  await copyFile(join(models, 'tokenizer_config.json'), join(f, 'tokenizer', 'tokenizer_config.json'))
  await writeFile(join(f, 'reader.onnx'), reader.bytes)
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(f, path)), { recursive: true })
    await writeFile(join(f, path), content)
  }
  await writeFile(
    join(f, 'encoder.json'),
    JSON.stringify({
      id: 'fmt',
      reader: {
        model: 'reader.onnx',
        tokenizer: 'tokenizer/tokenizer.json',
        ...(hookName === null
          ? {}
          : { inputs: { ids: 'input_ids', mask: 'attention_mask' }, output: 'hidden_states.1', hookName }),
        ...(maxTokens === null ? {} : { maxTokens })
      },
      sae
    })
  )
  return f
}

const F32 = (shape: number[], data: Float32Array) => ({ dtype: 'F32' as const, shape, data })
const ref = (o: Partial<ReferenceSae>): ReferenceSae => ({
  architecture: 'standard',
  dIn: D,
  dSae: S,
  wEnc: Float64Array.from(raw.wEnc),
  bEnc: Float64Array.from(raw.bEnc),
  bDec: Float64Array.from(raw.bDec),
  threshold: Float64Array.from(raw.threshold),
  rMag: Float64Array.from(raw.rMag),
  bMag: Float64Array.from(raw.bMag),
  k: 6,
  applyBDecToInput: false,
  normalize: 'none',
  ...o
})

/** The raw SAE as Gemma Scope's params.npz (deflated, as np.savez_compressed writes it). */
const gemmaScopeNpz = () =>
  zipFile(
    [
      { name: 'W_enc.npy', data: npyFile(raw.wEnc, [D, S]) },
      { name: 'W_dec.npy', data: npyFile(raw.wDec, [S, D]) },
      { name: 'b_enc.npy', data: npyFile(raw.bEnc, [S]) },
      { name: 'b_dec.npy', data: npyFile(raw.bDec, [D]) },
      { name: 'threshold.npy', data: npyFile(raw.threshold, [S]) }
    ],
    8
  )

/** The raw SAE as a sparsify run's layers.0 folder (TopK, k 6). */
const sparsifyFiles = () => ({
  'run/layers.0/cfg.json': JSON.stringify({ activation: 'topk', num_latents: S, k: 6, d_in: D, transcode: false }),
  'run/layers.0/sae.safetensors': safetensorsFile({
    'encoder.weight': F32([S, D], transpose(raw.wEnc, D, S)),
    'encoder.bias': F32([S], raw.bEnc),
    W_dec: F32([S, D], raw.wDec),
    b_dec: F32([D], raw.bDec)
  })
})

/** The raw SAE as Goodfire's state dict (two nn.Linear) in safetensors. */
const goodfireSafetensors = () =>
  safetensorsFile({
    'encoder_linear.weight': F32([S, D], transpose(raw.wEnc, D, S)),
    'encoder_linear.bias': F32([S], raw.bEnc),
    'decoder_linear.weight': F32([D, S], transpose(raw.wDec, S, D)),
    'decoder_linear.bias': F32([D], raw.bDec)
  })

/** Pool two documents with a max session and compare with the reference (no special tokens among the ids). */
async function assertEncoderMatches(folder: string, reference: ReferenceSae, architecture: string) {
  const encoder = await loadEncoder(folder, quiet)
  try {
    assert.equal(encoder.info.architecture, architecture)
    const docs = [
      [101, 2045, 377, 9000, 15, 812],
      [4000, 4001, 77, 31000, 555, 6]
    ]
    const T = docs[0].length
    const session = await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 1e6 })
    const out = await session.run({
      ids: BigInt64Array.from(docs.flat(), BigInt),
      attention: new Uint8Array(2 * T).fill(1),
      poolMask: new Float32Array(2 * T).fill(1),
      batchSize: 2,
      seqLen: T
    })
    let active = 0
    docs.forEach((row, b) => {
      const tokens = row.map(id => referenceEncode(reference, referenceHidden(reader, 1, id, 1)))
      for (let s = 0; s < S; s++) {
        const want = Math.max(0, ...tokens.map(t => t.acts[s]))
        if (tokens.some(t => t.margin[s] < 1e-4)) continue
        if (want > 0) active++
        assert.ok(
          Math.abs(out.pooled[b * S + s] - want) <= 1e-4 * Math.max(1, want),
          `${architecture}: doc ${b} latent ${s}: ${out.pooled[b * S + s]} vs ${want}`
        )
      }
    })
    assert.ok(active > S / 4, `only ${active} active pooled values`)
    return encoder.baseFingerprint
  } finally {
    await encoder.close()
  }
}

test('gemma-scope params.npz, sparsify layers.0, goodfire safetensors and a gated SAELens SAE all load and pool through loadEncoder', async () => {
  const npz = gemmaScopeNpz()
  const prints = new Set<string>()
  prints.add(
    await assertEncoderMatches(
      await encoderFolder(
        'blocks.0.hook_resid_post',
        { format: 'gemma-scope', path: 'sae/params.npz', hookName: 'blocks.0.hook_resid_post' },
        { 'sae/params.npz': npz }
      ),
      ref({ architecture: 'jumprelu' }),
      'jumprelu'
    )
  )

  const sparsify = sparsifyFiles()
  // The reader names the hook the Hugging Face way: layers.0 is hidden_states[1] = blocks.1.hook_resid_pre.
  prints.add(
    await assertEncoderMatches(
      await encoderFolder('blocks.1.hook_resid_pre', { format: 'sparsify', path: 'run/layers.0' }, sparsify),
      ref({ architecture: 'topk', applyBDecToInput: true }),
      'topk'
    )
  )

  const goodfire = { 'Llama-3.1-8B-Instruct-SAE-l0.safetensors': goodfireSafetensors() }
  prints.add(
    await assertEncoderMatches(
      await encoderFolder(
        'blocks.0.hook_resid_post',
        { format: 'goodfire', path: 'Llama-3.1-8B-Instruct-SAE-l0.safetensors' },
        goodfire
      ),
      ref({ architecture: 'standard' }),
      'standard'
    )
  )

  const gated = {
    'sae/cfg.json': JSON.stringify({
      d_in: D,
      d_sae: S,
      architecture: 'gated',
      apply_b_dec_to_input: true,
      metadata: { hook_name: 'blocks.0.hook_resid_post', context_size: 64 }
    }),
    'sae/sae_weights.safetensors': safetensorsFile({
      W_enc: F32([D, S], raw.wEnc),
      W_dec: F32([S, D], raw.wDec),
      b_gate: F32([S], raw.bEnc),
      r_mag: F32([S], raw.rMag),
      b_mag: F32([S], raw.bMag),
      b_dec: F32([D], raw.bDec)
    })
  }
  prints.add(
    await assertEncoderMatches(
      await encoderFolder('blocks.0.hook_resid_post', { format: 'saelens', path: 'sae' }, gated),
      ref({ architecture: 'gated', applyBDecToInput: true }),
      'gated'
    )
  )
  assert.equal(prints.size, 4, 'each SAE gives its own fingerprint')
})

test('a minimal encoder.json takes the hook from a sparsify layers.N folder or a Gemma Scope layer_L path, the output and inputs from the graph', async () => {
  const npz = gemmaScopeNpz()
  // The tiny reader outputs hidden_states.0, hidden_states.1, a stacked hidden_states and logits: the hook picks .1.
  const gemmaPath = 'gemma-scope-2b-pt-res/layer_0/width_16k/average_l0_8/params.npz'
  const gemma = await encoderFolder(null, { format: 'gemma-scope', path: gemmaPath }, { [gemmaPath]: npz })
  const sparsify = await encoderFolder(null, { format: 'sparsify', path: 'run/layers.0' }, sparsifyFiles())
  for (const [folder, hook] of [
    [gemma, 'blocks.0.hook_resid_post'],
    [sparsify, 'blocks.0.hook_resid_post']
  ] as const) {
    const encoder = await loadEncoder(folder, quiet)
    assert.equal(encoder.config.reader.hookName, hook)
    assert.equal(encoder.config.reader.output, 'hidden_states.1')
    assert.deepEqual(encoder.config.reader.inputs, { ids: 'input_ids', mask: 'attention_mask' })
    await encoder.close()
  }
  await assertEncoderMatches(gemma, ref({ architecture: 'jumprelu' }), 'jumprelu')
  await assertEncoderMatches(sparsify, ref({ architecture: 'topk', applyBDecToInput: true }), 'topk')
})

test('encoder.json errors for the new formats name the field', async () => {
  await assert.rejects(
    loadEncoder(
      await encoderFolder(
        'blocks.0.hook_resid_post',
        { format: 'gemma-scope', path: 'nowhere/params.npz', hookName: 'x' },
        {}
      ),
      quiet
    ),
    /encoder\.json: sae\.path: .*nowhere\/params\.npz cannot be read \(ENOENT\)/
  )
  await assert.rejects(
    loadEncoder(await encoderFolder('blocks.0.hook_resid_post', { format: 'npz', path: 'x' }, {}), quiet),
    /encoder\.json: sae\.format: /
  )
  const goodfire = { 'sae-l2.safetensors': goodfireSafetensors() }
  await assert.rejects(
    loadEncoder(
      await encoderFolder('blocks.0.hook_resid_post', { format: 'goodfire', path: 'sae-l2.safetensors' }, goodfire),
      quiet
    ),
    /encoder\.json: reader\.hookName is "blocks\.0\.hook_resid_post" but the SAE's the file name sae-l2\.safetensors says "blocks\.2\.hook_resid_post"/
  )
  await assert.rejects(
    loadEncoder(
      await encoderFolder(
        'blocks.2.hook_resid_post',
        { format: 'goodfire', path: 'sae-l2.safetensors' },
        goodfire,
        null
      ),
      quiet
    ),
    /encoder\.json: reader\.maxTokens is not set and encoder\.json has no sae\.contextSize/
  )
})
