/**
 * @module The benchmark's export script (gpu-worker/tools/make_gpt2_bench.py, run with Debian's python3-torch) on a
 * tiny shape: its folder loads through the ordinary encoder path and pools what PyTorch computed in float64; and the
 * PyTorch proxy of the GPU benchmark (gpu_proxy_bench.py) times both paths and pools what the formulas give.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadEncoder } from '../encode/runtime.ts'
import { ensureGpt2Folder, PYTHON } from './gpt2-folder.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-gpt2-export-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

// GPT-2's vocabulary (so its tokenizer applies), 2 blocks of width 64, a 512-latent SAE on the residual before block 1.
const TINY = [
  '--blocks',
  '2',
  '--width',
  '64',
  '--heads',
  '2',
  '--positions',
  '64',
  '--layer',
  '1',
  '--d-sae',
  '512',
  '--l0',
  '8',
  '--reference'
]

interface Expected {
  ids: number[][]
  attention: number[][]
  poolMask: number[][]
  pooled: number[][]
  l0: number
}

test('the exported GPT-2-shaped folder loads as a minimal encoder and its SAE max pooling equals the float64 PyTorch reference', async () => {
  const folder = join(root, 'gpt2-tiny')
  const made = await ensureGpt2Folder(folder, { exportArgs: TINY, maxTokens: 64, log: console.log })
  assert.equal(made.made, true)
  assert.equal(
    (await ensureGpt2Folder(folder, { exportArgs: TINY, maxTokens: 64 })).made,
    false,
    'a second call reuses the export'
  )
  const expected = JSON.parse(await readFile(join(folder, 'expected.json'), 'utf8')) as Expected
  assert.ok(expected.l0 > 2 && expected.l0 < 20, `about 8 latents fire per sample token (${expected.l0})`)

  const encoder = await loadEncoder(folder, { log: () => {}, intraOpNumThreads: 1, cacheDir: join(root, 'cache') })
  try {
    // What encoder.json left out came from the graph and the SAE: the ordinary path a user's folder takes.
    assert.equal(encoder.config.reader.output, 'hidden_states.1')
    assert.deepEqual(encoder.config.reader.inputs, { ids: 'input_ids', mask: 'attention_mask' })
    assert.equal(encoder.info.hookName, 'blocks.1.hook_resid_pre')
    assert.equal(encoder.info.dSae, 512)
    assert.equal(encoder.bosTokenId, 50256, "GPT-2's <|endoftext|>")
    assert.deepEqual(
      encoder.tokenizer.encode('Hello world', { add_special_tokens: false }).ids,
      [15496, 995],
      "GPT-2's ids for 'Hello world'"
    )

    const B = expected.ids.length,
      T = expected.ids[0].length,
      S = encoder.info.dSae
    const session = await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
    const got = await session.run({
      ids: BigInt64Array.from(expected.ids.flat(), BigInt),
      attention: Uint8Array.from(expected.attention.flat()),
      poolMask: Float32Array.from(expected.poolMask.flat()),
      batchSize: B,
      seqLen: T
    })
    let active = 0
    for (let l = 0; l < S; l++) {
      let max = 1e-3
      for (const row of expected.pooled) max = Math.max(max, row[l])
      for (let i = 0; i < B; i++) {
        const want = expected.pooled[i][l],
          have = got.pooled[i * S + l]
        if (want > 0) active++
        assert.ok(Math.abs(want - have) <= 1e-4 * max + 1e-5, `doc ${i} latent ${l}: reference ${want}, pooled ${have}`)
      }
    }
    assert.ok(active > B * 4, `${active} pooled activations compared`)
  } finally {
    await encoder.close()
  }
})

const PROXY = join(import.meta.dirname, '..', '..', 'tools', 'gpu_proxy_bench.py')
const TINY_PROXY = ['--blocks', '2', '--width', '64', '--heads', '2', '--layer', '1', '--d-sae', '512']

test('the GPU proxy benchmark times the reader alone and the fused step, and its pooling matches the float64 formulas', async () => {
  const run = promisify(execFile)
  const { stdout } = await run(
    PYTHON,
    [
      PROXY,
      '--device',
      'cpu',
      '--sae-dtype',
      'float32',
      '--tokens',
      '1024',
      '--batch',
      '4',
      '--length',
      '64',
      '--check',
      ...TINY_PROXY
    ],
    { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }
  )
  const lines = stdout.trim().split('\n')
  const result = JSON.parse(lines[lines.length - 1])
  assert.match(lines[lines.length - 2], /fused throughput \d+(\.\d)?% of the reader's \(goal >= 90%\)/)
  assert.equal(result.padded_tokens, 1024)
  assert.ok(result.reader.tokens_per_s > 0 && result.fused.tokens_per_s > 0)
  assert.ok(Math.abs(result.fused_over_reader - result.fused.tokens_per_s / result.reader.tokens_per_s) < 1e-3)
  assert.ok(result.check.max_error_over_max < 1e-4 && result.check.argmax_agree >= 0.99 && result.check.active > 20)
  await assert.rejects(run(PYTHON, [PROXY, '--device', 'cpu', ...TINY_PROXY]), (err: Error & { stderr: string }) =>
    /float16 needs --device cuda/.test(err.stderr)
  )
})
