/**
 * @module ONNX external data: models over protobuf's 2 GB limit keep their weights in a side file. Moves large
 * initializers out of a model, finds the files a model refers to, and writes a composed model where onnxruntime
 * (which resolves external data only relative to a model file on disk, never for in-memory models) can read them.
 */
import { link, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import onnxPkg from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'

const { onnx } = onnxPkg
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL

/** Protobuf's hard limit is 2 GiB; a model past this (with its inline weights) must use external data. */
export const INLINE_LIMIT_BYTES = 1.8e9

/** The side files a model's initializers live in (relative to the model file), in first-use order. */
export function externalDataFiles(model: Onnx.IModelProto): string[] {
  const files: string[] = []
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== EXTERNAL) continue
    const location = t.externalData?.find(e => e.key === 'location')?.value
    if (location && !files.includes(location)) files.push(location)
  }
  return files
}

/**
 * Move every initializer of at least `minBytes` raw bytes into one side buffer (64-byte aligned, as onnx writes
 * them), leaving references to `location` in the model. Returns the side buffer (empty when nothing moved).
 */
export function externalize(model: Onnx.IModelProto, location: string, minBytes = 1 << 20): Uint8Array {
  const moved: Array<{ t: Onnx.ITensorProto; bytes: Uint8Array; offset: number }> = []
  let size = 0
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData as Uint8Array | null | undefined
    if (t.dataLocation === EXTERNAL || !raw || raw.byteLength < minBytes) continue
    const offset = Math.ceil(size / 64) * 64
    moved.push({ t, bytes: raw, offset })
    size = offset + raw.byteLength
  }
  const data = new Uint8Array(size)
  for (const { t, bytes, offset } of moved) {
    data.set(bytes, offset)
    t.rawData = new Uint8Array(0)
    t.dataLocation = EXTERNAL
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.byteLength) }
    ]
  }
  return data
}

/**
 * Write a composed model (and its own side file, if any) into `dir` so that its external data references resolve:
 * files the reader's initializers live in are made visible in `dir` under the same names (hard link, else symlink),
 * because onnxruntime resolves locations relative to the model file and refuses paths that leave its folder.
 * Returns the model file's path, for InferenceSession.create(path).
 */
export async function writeModelWithExternalData(
  dir: string,
  name: string,
  modelBytes: Uint8Array,
  sideData: { location: string; bytes: Uint8Array } | null,
  readerDir: string,
  readerFiles: string[]
): Promise<string> {
  await mkdir(dir, { recursive: true })
  for (const file of readerFiles) {
    const target = join(dir, file)
    const source = resolve(readerDir, file)
    if (resolve(target) === source || existsSync(target)) continue
    await mkdir(dirname(target), { recursive: true })
    await link(source, target).catch(() => symlink(source, target))
  }
  if (sideData && sideData.bytes.byteLength) await atomicWrite(join(dir, sideData.location), sideData.bytes)
  const path = join(dir, name)
  await atomicWrite(path, modelBytes)
  return path
}

async function atomicWrite(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`
  await writeFile(tmp, bytes)
  await rename(tmp, path)
}

/** Read a model file; its external data stays on disk (the caller composes around the references). */
export async function readModel(
  path: string
): Promise<{ bytes: Uint8Array; model: Onnx.ModelProto; dir: string; files: string[] }> {
  const bytes = new Uint8Array(await readFile(path))
  const model = onnx.ModelProto.decode(bytes)
  return { bytes, model, dir: dirname(resolve(path)), files: externalDataFiles(model) }
}
