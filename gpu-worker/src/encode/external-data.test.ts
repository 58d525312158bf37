/** @module Tests of ONNX external data: a reader whose weights live in a side file runs in onnxruntime exactly like the inline one. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import onnxPkg from 'onnx-proto'
import ort from 'onnxruntime-node'
import { externalDataFiles, externalize, readModel, writeModelWithExternalData } from './external-data.ts'
import { buildTinyReader } from './test-fixtures.ts'

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
    assert.ok(small.byteLength < reader.bytes.byteLength / 4, `model file ${small.byteLength} bytes of ${reader.bytes.byteLength}`)
    for (const t of model.graph!.initializer!) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue
      const offset = Number(t.externalData!.find((e) => e.key === 'offset')!.value)
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
  } finally { await rm(dir, { recursive: true, force: true }) }
})
