/** @module An encoder whose SAE, tokenizer and labels live on a (fake) hub and whose reader keeps its weights in external data: same encoder as the local folder. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import onnxPkg from 'onnx-proto'
import { loadEncoder, type EncoderBatch } from './runtime.ts'
import { buildTinyReader, writeTinySae, llamaModelsDir } from './test-fixtures.ts'
import { externalize } from './external-data.ts'
import { fakeCommit, startFakeHub, type FakeHub } from './remote/hub-testkit.ts'

const { onnx } = onnxPkg
const llama = llamaModelsDir()

const D = 16,
  S = 40,
  HOOK = 'blocks.0.hook_resid_post'
const COMMIT = fakeCommit('sae')
let root: string
let hub: FakeHub

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-remote-encoder-'))
  const reader = buildTinyReader({ vocab: 32000, d: D, unusedWidth: 64 })
  // The local folder: everything inline.
  const local = join(root, 'local')
  await mkdir(join(local, 'tok'), { recursive: true })
  await writeFile(join(local, 'reader.onnx'), reader.bytes)
  await writeTinySae(join(local, 'sae'), { architecture: 'jumprelu', dIn: D, dSae: S, hookName: HOOK, contextSize: 64 })
  const tokenizer = await readFile(join(llama, 'tokenizer.json'))
  const tokenizerConfig = await readFile(join(llama, 'tokenizer_config.json'))
  await writeFile(join(local, 'tok', 'tokenizer.json'), tokenizer)
  await writeFile(join(local, 'tok', 'tokenizer_config.json'), tokenizerConfig)
  const labels = '{"latent": 3, "label": "whales", "source": "test"}\n'
  await writeFile(join(local, 'labels.jsonl'), labels)
  const reader0 = {
    model: 'reader.onnx',
    tokenizer: 'tok/tokenizer.json',
    inputs: { ids: 'input_ids', mask: 'attention_mask' },
    output: 'hidden_states.1',
    hookName: HOOK
  }
  await writeFile(
    join(local, 'encoder.json'),
    JSON.stringify({ id: 'tiny', reader: reader0, sae: { format: 'saelens', path: 'sae' }, labels: 'labels.jsonl' })
  )

  // The same parts on a hub (SAE folder in LFS, tokenizer and labels in git) ...
  const saeFiles = {
    cfg: await readFile(join(local, 'sae', 'cfg.json')),
    weights: await readFile(join(local, 'sae', 'sae_weights.safetensors'))
  }
  hub = await startFakeHub({
    'acme/tiny-saes': {
      commits: {
        [COMMIT]: {
          'blocks.0/cfg.json': { content: saeFiles.cfg },
          'blocks.0/sae_weights.safetensors': { content: saeFiles.weights, lfs: true },
          'tok/tokenizer.json': { content: tokenizer },
          'tok/tokenizer_config.json': { content: tokenizerConfig },
          'labels.jsonl': { content: new TextEncoder().encode(labels) }
        }
      },
      refs: { main: COMMIT }
    }
  })
  // ... and a reader whose weights sit in reader.onnx.data (as models over 2 GB are exported).
  const remote = join(root, 'remote')
  await mkdir(remote, { recursive: true })
  const model = onnx.ModelProto.decode(reader.bytes)
  const side = externalize(model, 'reader.onnx.data', 1024)
  await writeFile(join(remote, 'reader.onnx'), onnx.ModelProto.encode(model).finish())
  await writeFile(join(remote, 'reader.onnx.data'), side)
  await writeFile(
    join(remote, 'encoder.json'),
    JSON.stringify({
      id: 'tiny',
      reader: { ...reader0, tokenizer: 'hf://acme/tiny-saes/tok/tokenizer.json' },
      sae: { format: 'saelens', path: 'hf://acme/tiny-saes/blocks.0' },
      labels: 'hf://acme/tiny-saes/labels.jsonl'
    })
  )
})
after(async () => {
  await hub?.close()
  await rm(root, { recursive: true, force: true })
})

function batch(): EncoderBatch {
  const B = 2,
    T = 6
  const ids = BigInt64Array.from([1, 450, 3186, 338, 263, 29889, 1, 910, 11203, 29871, 2, 2].map(BigInt))
  const attention = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
  const poolMask = Float32Array.from(attention, (a, i) => (i % T === 0 ? 0 : a))
  return { ids, attention, poolMask, batchSize: B, seqLen: T }
}

test('hf:// parts are fetched into the cache, an external-data reader runs, and the encoder equals the local one', async () => {
  const opts = {
    log: () => {},
    intraOpNumThreads: 1,
    cacheDir: join(root, 'cache'),
    fetchOptions: { env: { HF_ENDPOINT: hub.endpoint } }
  }
  const local = await loadEncoder(join(root, 'local'), opts)
  const remote = await loadEncoder(join(root, 'remote'), opts)
  try {
    assert.equal(remote.labels[3], 'whales')
    assert.equal(remote.labelSources[3], 'test')
    assert.ok(
      remote.prepareContext.chatTemplate === local.prepareContext.chatTemplate,
      'tokenizer_config.json beside the remote tokenizer is used'
    )
    assert.equal(remote.sae.dSae, S)
    const a = await (await local.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch())
    const b = await (await remote.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch())
    assert.deepEqual(b.pooled, a.pooled, 'same pooled values through the external-data reader')
    const composed = await readdir(join(root, 'cache', 'composed'))
    assert.equal(composed.length, 1, 'the composed graph was written beside links to the side file')
    assert.ok(existsSync(join(root, 'cache', 'composed', composed[0], 'reader.onnx.data')))
    // A second load is served from the cache: the hub only answers the revision check.
    const before = hub.requests.filter(r => r.method === 'GET').length
    const again = await loadEncoder(join(root, 'remote'), opts)
    await again.close()
    assert.equal(hub.requests.filter(r => r.method === 'GET').length, before, 'no file downloaded twice')
  } finally {
    await local.close()
    await remote.close()
  }
})

test("a missing remote part fails with the encoder.json field and the hub's reason", async () => {
  const folder = join(root, 'missing')
  await mkdir(folder, { recursive: true })
  const config = JSON.parse(await readFile(join(root, 'remote', 'encoder.json'), 'utf8'))
  config.sae.path = 'hf://acme/tiny-saes/blocks.9'
  await writeFile(join(folder, 'encoder.json'), JSON.stringify(config))
  await writeFile(join(folder, 'reader.onnx'), await readFile(join(root, 'local', 'reader.onnx')))
  await assert.rejects(
    loadEncoder(folder, {
      log: () => {},
      cacheDir: join(root, 'cache'),
      fetchOptions: { env: { HF_ENDPOINT: hub.endpoint } }
    }),
    /encoder\.json: sae\.path: hf:\/\/acme\/tiny-saes\/blocks\.9: .*no file blocks\.9\/cfg\.json at revision/
  )
})
