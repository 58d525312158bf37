/**
 * @module A reader exported by torch.onnx.export and SAEs in SAELens format, all made outside this project's code
 * (gpu-worker/tools/make_torch_fixture.py), pool the values PyTorch and numpy computed in float64.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import onnxPkg from 'onnx-proto'
import { loadEncoder, type EncoderBatch } from './runtime.ts'
import { llamaModelsDir } from './test-fixtures.ts'

const FIXTURE = fileURLToPath(new URL('./fixtures/torch-gpt2-tiny/', import.meta.url))
const llama = llamaModelsDir()

interface Expected {
  ids: number[][]
  attention: number[][]
  poolMask: number[][]
  saes: Record<string, { pooled: number[][] }>
}
let expected: Expected
let root: string

before(async () => {
  expected = JSON.parse(await readFile(join(FIXTURE, 'expected.json'), 'utf8'))
  root = await mkdtemp(join(tmpdir(), 'latentbase-torch-reader-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

function batch(): EncoderBatch {
  const B = expected.ids.length,
    T = expected.ids[0].length
  return {
    ids: BigInt64Array.from(expected.ids.flat().map(BigInt)),
    attention: Uint8Array.from(expected.attention.flat()),
    poolMask: Float32Array.from(expected.poolMask.flat()),
    batchSize: B,
    seqLen: T
  }
}

for (const arch of ['jumprelu', 'topk']) {
  test(`torch-exported reader + SAELens ${arch} SAE: pooled values equal the float64 reference`, async () => {
    const folder = join(root, arch)
    await mkdir(folder, { recursive: true })
    await copyFile(join(FIXTURE, 'reader.onnx'), join(folder, 'reader.onnx'))
    await cp(join(FIXTURE, `sae-${arch}`), join(folder, 'sae'), { recursive: true })
    await copyFile(join(llama, 'tokenizer.json'), join(folder, 'tokenizer.json'))
    await writeFile(
      join(folder, 'encoder.json'),
      JSON.stringify({
        id: `torch-${arch}`,
        reader: {
          model: 'reader.onnx',
          tokenizer: 'tokenizer.json',
          inputs: { ids: 'input_ids', mask: 'attention_mask' },
          output: 'hidden_states.1',
          hookName: 'blocks.0.hook_resid_post'
        },
        sae: { format: 'saelens', path: 'sae' }
      })
    )
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
          const x = want[i][l],
            y = got.pooled[i * S + l]
          if (x > 0) active++
          assert.ok(
            Math.abs(x - y) <= 1e-4 * Math.max(max, 1e-3),
            `${arch} doc ${i} latent ${l}: reference ${x}, pooled ${y}`
          )
        }
      }
      assert.ok(active > want.length * 3, `${active} pooled activations compared`)
    } finally {
      await encoder.close()
    }
  })
}

/** An encoder folder as SAELens and PyTorch users write one: the torch reader, tokenizer.json, a SAELens SAE folder. */
async function userFolder(
  name: string,
  config: Record<string, unknown>,
  reader?: Uint8Array,
  arch = 'jumprelu'
): Promise<string> {
  const folder = join(root, name)
  await mkdir(folder, { recursive: true })
  if (reader) await writeFile(join(folder, 'reader.onnx'), reader)
  else await copyFile(join(FIXTURE, 'reader.onnx'), join(folder, 'reader.onnx'))
  await cp(join(FIXTURE, `sae-${arch}`), join(folder, 'sae'), { recursive: true })
  await copyFile(join(llama, 'tokenizer.json'), join(folder, 'tokenizer.json'))
  await writeFile(join(folder, 'encoder.json'), JSON.stringify(config))
  return folder
}

const MINIMAL = {
  id: 'torch-user',
  reader: { model: 'reader.onnx', tokenizer: 'tokenizer.json' },
  sae: { format: 'saelens', path: 'sae' }
}
const EXPLICIT = {
  ...MINIMAL,
  reader: {
    ...MINIMAL.reader,
    inputs: { ids: 'input_ids', mask: 'attention_mask' },
    output: 'hidden_states.1',
    hookName: 'blocks.0.hook_resid_post'
  }
}

test('a minimal encoder.json (no inputs, output or hookName) loads from the graph and the SAE metadata and encodes as the explicit one', async () => {
  const minimal = await loadEncoder(await userFolder('minimal', MINIMAL), { log: () => {}, intraOpNumThreads: 1 })
  const explicit = await loadEncoder(await userFolder('explicit', EXPLICIT), { log: () => {}, intraOpNumThreads: 1 })
  try {
    assert.deepEqual(minimal.config.reader.inputs, { ids: 'input_ids', mask: 'attention_mask' })
    assert.equal(minimal.config.reader.output, 'hidden_states.1')
    assert.equal(minimal.config.reader.hookName, 'blocks.0.hook_resid_post')
    assert.equal(minimal.info.hookName, 'blocks.0.hook_resid_post')
    // Same encoder, said in fewer words: the same fingerprint, so datasets encoded either way compare.
    assert.equal(minimal.baseFingerprint, explicit.baseFingerprint)
    const run = async (e: typeof minimal) =>
      (await e.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch())
    const [a, b] = [await run(minimal), await run(explicit)]
    assert.deepEqual(a.pooled, b.pooled)
    assert.deepEqual(a.argmax, b.argmax)
    // and both equal the float64 reference PyTorch computed
    const want = expected.saes.jumprelu.pooled,
      S = minimal.sae.dSae
    for (let i = 0; i < want.length; i++)
      for (let l = 0; l < S; l++) assert.ok(Math.abs(want[i][l] - a.pooled[i * S + l]) <= 1e-3, `doc ${i} latent ${l}`)
  } finally {
    await minimal.close()
    await explicit.close()
  }
})

test('a hook given in encoder.json is checked against the SAE metadata: other names of the same hidden state agree, others fail naming both', async () => {
  const same = await loadEncoder(
    await userFolder('hook-same', { ...MINIMAL, reader: { ...MINIMAL.reader, hookName: 'blocks.1.hook_resid_pre' } }),
    { log: () => {}, intraOpNumThreads: 1 }
  )
  assert.equal(same.config.reader.output, 'hidden_states.1')
  await same.close()
  await assert.rejects(
    loadEncoder(
      await userFolder('hook-other', {
        ...MINIMAL,
        reader: { ...MINIMAL.reader, hookName: 'blocks.2.hook_resid_post' }
      }),
      { log: () => {} }
    ),
    /encoder\.json: reader\.hookName is "blocks\.2\.hook_resid_post" but the SAE's sae\/cfg\.json says metadata\.hook_name "blocks\.0\.hook_resid_post"/
  )
})

/** The torch reader with its graph inputs renamed (as an exporter run without input_names writes them). */
async function renamedReader(names: Record<string, string>): Promise<Uint8Array> {
  const { onnx } = onnxPkg
  const model = onnx.ModelProto.decode(await readFile(join(FIXTURE, 'reader.onnx')))
  for (const v of model.graph!.input!) v.name = names[v.name!] ?? v.name
  for (const n of model.graph!.node!) n.input = n.input!.map(i => names[i] ?? i)
  return onnx.ModelProto.encode(model).finish()
}

test('graph inputs that cannot be told apart fail listing the inputs and the encoder.json field to set; naming them loads', async () => {
  const reader = await renamedReader({ input_ids: 'onnx::Gather_0', attention_mask: 'onnx::Cast_1' })
  await assert.rejects(
    loadEncoder(await userFolder('unnamed-inputs', MINIMAL, reader), { log: () => {} }),
    (err: Error) => {
      assert.match(err.message, /encoder\.json: reader\.inputs cannot be inferred from the reader graph/)
      assert.match(
        err.message,
        /The graph's inputs: onnx::Gather_0 \(int64 \[batch, tokens\]\), onnx::Cast_1 \(int64 \[batch, tokens\]\)/
      )
      assert.match(
        err.message,
        /Set reader\.inputs in encoder\.json, e\.g\. "inputs": \{"ids":"onnx::Gather_0","mask":"onnx::Cast_1"\}/
      )
      return true
    }
  )
  const named = await loadEncoder(
    await userFolder(
      'named-inputs',
      { ...MINIMAL, reader: { ...MINIMAL.reader, inputs: { ids: 'onnx::Gather_0', mask: 'onnx::Cast_1' } } },
      reader
    ),
    { log: () => {}, intraOpNumThreads: 1 }
  )
  try {
    const got = await (await named.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch())
    const want = expected.saes.jumprelu.pooled,
      S = named.sae.dSae
    for (let i = 0; i < want.length; i++)
      for (let l = 0; l < S; l++) assert.ok(Math.abs(want[i][l] - got.pooled[i * S + l]) <= 1e-3)
  } finally {
    await named.close()
  }
})
