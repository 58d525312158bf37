/** @module The float16 (GPU default) and int8 (CPU fast mode) SAE products against float32: close to each latent's max, >= 98-99% of the active set, no NaN from masked or outlier tokens, and distinct fingerprints. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadEncoder, type EncoderBatch } from './runtime.ts'
import { buildTinyReader, writeTinySae, llamaModelsDir } from './test-fixtures.ts'

const llama = llamaModelsDir()

const D = 32,
  S = 256,
  HOOK = 'blocks.0.hook_resid_post',
  HUGE = 500
let root: string

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-f16-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function folder(architecture: 'topk' | 'jumprelu' | 'standard'): Promise<string> {
  const f = join(root, architecture)
  await mkdir(f, { recursive: true })
  await copyFile(join(llama, 'tokenizer.json'), join(f, 'tokenizer.json'))
  // HUGE's embedding is 1000x the others: its activations overflow float16, and it must be masked as an outlier.
  await writeFile(
    join(f, 'reader.onnx'),
    buildTinyReader({ vocab: 32000, d: D, unusedWidth: 16, hugeTokens: [HUGE], hugeFactor: 1000 }).bytes
  )
  await writeTinySae(join(f, 'sae'), { architecture, k: 24, dIn: D, dSae: S, hookName: HOOK, contextSize: 64 })
  await writeFile(
    join(f, 'encoder.json'),
    JSON.stringify({
      id: `f16-${architecture}`,
      reader: {
        model: 'reader.onnx',
        tokenizer: 'tokenizer.json',
        inputs: { ids: 'input_ids', mask: 'attention_mask' },
        output: 'hidden_states.1',
        hookName: HOOK
      },
      sae: { format: 'saelens', path: 'sae' }
    })
  )
  return f
}

function batch(): EncoderBatch {
  const B = 8,
    T = 23
  const ids = new BigInt64Array(B * T)
  const attention = new Uint8Array(B * T)
  const poolMask = new Float32Array(B * T)
  for (let b = 0; b < B; b++) {
    const len = T - b * 2
    for (let t = 0; t < T; t++) {
      const i = b * T + t
      ids[i] = t === 0 ? 1n : BigInt(t === 5 && b % 2 === 0 ? HUGE : 100 + ((b * 7919 + t * 104729) % 30000))
      attention[i] = t < len ? 1 : 0
      poolMask[i] = t > 0 && t < len ? 1 : 0
    }
  }
  return { ids, attention, poolMask, batchSize: B, seqLen: T }
}

// int8's input step is a token's largest |x| / 127, so its error is some 30x float16's (worst on this fixture: 1.5e-2
// of a latent's max against 4.5e-4). A top-k SAE turns that into membership flips: a latent within rounding of a
// token's k-th value enters or leaves, moving the pooled value by up to that k-th value. Such values (beyond the
// tolerance) are allowed for int8 only, and count against the active-set agreement: a sum meets every token's
// boundary, so it gets the looser bound (0.979 measured for top-k).
const PRECISIONS = {
  float16: { max: 1e-2, sum: 3e-2, agreement: { max: 0.99, sum: 0.99 }, flips: false },
  int8: { max: 3e-2, sum: 6e-2, agreement: { max: 0.98, sum: 0.97 }, flips: true }
} as const

for (const architecture of ['topk', 'jumprelu', 'standard'] as const)
  for (const [dtype, limits] of Object.entries(PRECISIONS) as [
    keyof typeof PRECISIONS,
    (typeof PRECISIONS)[keyof typeof PRECISIONS]
  ][]) {
    test(`${architecture}: ${dtype} SAE product agrees with float32`, async () => {
      const f = await folder(architecture)
      const full = await loadEncoder(f, { log: () => {}, intraOpNumThreads: 1, saeDtype: 'float32' })
      const half = await loadEncoder(f, { log: () => {}, intraOpNumThreads: 1, saeDtype: dtype })
      try {
        assert.notEqual(half.baseFingerprint, full.baseFingerprint, 'the precision is part of the fingerprint')
        const worst = { max: 0, sum: 0 }
        for (const method of ['max', 'sum'] as const) {
          const a = await (await full.createPoolingSession({ method, outlierNormRatio: 100 })).run(batch())
          const b = await (await half.createPoolingSession({ method, outlierNormRatio: 100 })).run(batch())
          assert.deepEqual(Array.from(b.outliers), Array.from(a.outliers))
          assert.ok(
            Array.from(a.outliers).some(n => n > 0),
            'the huge token was masked as an outlier'
          )
          const B = a.outliers.length
          let active = 0,
            agree = 0
          for (let l = 0; l < S; l++) {
            let max = 0
            for (let i = 0; i < B; i++) max = Math.max(max, Math.abs(a.pooled[i * S + l]))
            for (let i = 0; i < B; i++) {
              const x = a.pooled[i * S + l],
                y = b.pooled[i * S + l]
              assert.ok(Number.isFinite(y), `finite pooled value (latent ${l}, doc ${i})`)
              const close = max === 0 || Math.abs(x - y) <= limits[method] * max + 1e-6
              if (x > 0 || y > 0) {
                active++
                if (x > 0 && y > 0 && close) agree++
              }
              // A sum also collects the tokens that sit within rounding of a JumpReLU threshold or the k-th value
              // (excluded from per-token conformance): one such flip moves it by about a threshold, hence 3e-2.
              if (close) worst[method] = Math.max(worst[method], max > 0 ? Math.abs(x - y) / max : 0)
              else assert.ok(limits.flips, `${method} latent ${l} doc ${i}: ${x} vs ${y} (max ${max})`)
            }
          }
          assert.ok(active > 0)
          assert.ok(agree / active >= limits.agreement[method], `active-set agreement ${agree}/${active}`)
          if (process.env.LATENTBASE_PRINT_PRECISION)
            console.log(
              `${architecture} ${dtype} ${method}: worst ${worst[method].toExponential(2)} of a latent's max, agreement ${(agree / active).toFixed(4)}`
            )
        }
      } finally {
        await full.close()
        await half.close()
      }
    })
  }

test('int8 is refused on CUDA, and LATENTBASE_SAE_DTYPE lists the precisions it accepts', async () => {
  const f = await folder('standard')
  await assert.rejects(
    loadEncoder(f, { log: () => {}, executionProviders: ['cuda'], saeDtype: 'int8' }),
    /int8 is for the CPU; on CUDA use float16/
  )
  const before = process.env.LATENTBASE_SAE_DTYPE
  process.env.LATENTBASE_SAE_DTYPE = 'int4'
  try {
    await assert.rejects(loadEncoder(f, { log: () => {} }), /must be one of float32, float16, int8, got "int4"/)
  } finally {
    if (before === undefined) delete process.env.LATENTBASE_SAE_DTYPE
    else process.env.LATENTBASE_SAE_DTYPE = before
  }
})
