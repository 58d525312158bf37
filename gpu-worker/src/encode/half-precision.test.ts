/** @module The float16 SAE product (the GPU default) against float32: within 1e-2 of each latent's max, >= 99% of the active set, no NaN from masked or outlier tokens, and a distinct fingerprint. */
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
    T = 24
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

for (const architecture of ['topk', 'jumprelu', 'standard'] as const) {
  test(`${architecture}: float16 SAE product agrees with float32`, async () => {
    const f = await folder(architecture)
    const full = await loadEncoder(f, { log: () => {}, intraOpNumThreads: 1, saeDtype: 'float32' })
    const half = await loadEncoder(f, { log: () => {}, intraOpNumThreads: 1, saeDtype: 'float16' })
    try {
      assert.notEqual(half.baseFingerprint, full.baseFingerprint, 'the precision is part of the fingerprint')
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
            if (x > 0 || y > 0) {
              active++
              if (x > 0 && y > 0) agree++
            }
            // A sum also collects the tokens that sit within rounding of a JumpReLU threshold or the k-th value
            // (excluded from per-token conformance): one such flip moves it by about a threshold, hence 3e-2.
            const tolerance = method === 'max' ? 1e-2 : 3e-2
            if (max > 0)
              assert.ok(
                Math.abs(x - y) <= tolerance * max + 1e-6,
                `${method} latent ${l} doc ${i}: ${x} vs ${y} (max ${max})`
              )
          }
        }
        assert.ok(active > 0)
        assert.ok(agree / active >= 0.99, `active-set agreement ${agree}/${active}`)
      }
    } finally {
      await full.close()
      await half.close()
    }
  })
}
