/** @module Read and write the safetensors format (SAELens, sparsify and Gemma Scope 2 weights). */
import { bfloat16ToFloat32Array } from './dtype.ts'
import { halfToFloat32, float32ToHalf, toBfloat16Bits } from './float16.ts'

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64'

export interface TensorEntry {
  dtype: SafetensorsDtype
  shape: number[]
  /** Raw little-endian bytes of the tensor. */
  bytes: Uint8Array
}

export interface Safetensors {
  tensors: Map<string, TensorEntry>
  metadata: Record<string, string>
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 }

export function parseSafetensors(file: Uint8Array): Safetensors {
  if (file.byteLength < 8) throw new Error('not a safetensors file: shorter than its 8-byte header length')
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength)
  const headerLength = Number(view.getBigUint64(0, true))
  if (headerLength > file.byteLength - 8)
    throw new Error(`not a safetensors file: header length ${headerLength} exceeds the file`)
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength))) as Record<string, unknown>
  const base = 8 + headerLength
  const tensors = new Map<string, TensorEntry>()
  let metadata: Record<string, string> = {}
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>
      continue
    }
    const { dtype, shape, data_offsets } = raw as { dtype: string; shape: number[]; data_offsets: [number, number] }
    if (!(dtype in BYTES))
      throw new Error(`tensor "${name}": unsupported dtype ${dtype} (supported: ${Object.keys(BYTES).join(', ')})`)
    const count = shape.reduce((a, b) => a * b, 1)
    const [start, end] = data_offsets
    if (end - start !== count * BYTES[dtype as SafetensorsDtype]) {
      throw new Error(`tensor "${name}": ${end - start} bytes do not hold shape [${shape}] of ${dtype}`)
    }
    if (base + end > file.byteLength)
      throw new Error(`tensor "${name}": data past the end of the file (truncated download?)`)
    tensors.set(name, { dtype: dtype as SafetensorsDtype, shape, bytes: file.subarray(base + start, base + end) })
  }
  return { tensors, metadata }
}

/** Any floating tensor as float32 (F16 and BF16 widened, F64 narrowed). */
export function tensorToFloat32(entry: TensorEntry): Float32Array {
  const { bytes, dtype } = entry
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice()
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice()
    case 'F16':
      return halfToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2))
    case 'BF16':
      return bfloat16ToFloat32Array(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2))
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8))
    default:
      throw new Error(`tensor of dtype ${dtype} is not floating point`)
  }
}

export interface TensorToWrite {
  /** Stored precision: float32 values are rounded to it (bfloat16 by round-to-nearest-even). */
  dtype: 'F32' | 'F16' | 'BF16'
  shape: number[]
  data: Float32Array
}

/** Serialize tensors (sorted by name, as the reference implementation does). */
export function writeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {}
): Uint8Array {
  const names = Object.keys(tensors).sort()
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length) header.__metadata__ = metadata
  const blobs: Uint8Array[] = []
  let offset = 0
  for (const name of names) {
    const t = tensors[name]
    const count = t.shape.reduce((a, b) => a * b, 1)
    if (count !== t.data.length)
      throw new Error(`tensor "${name}": ${t.data.length} values do not fill shape [${t.shape}]`)
    const blob =
      t.dtype === 'F16'
        ? new Uint8Array(float32ToHalf(t.data).buffer)
        : t.dtype === 'BF16'
          ? new Uint8Array(Uint16Array.from(t.data, toBfloat16Bits).buffer)
          : new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength))
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + blob.byteLength] }
    blobs.push(blob)
    offset += blob.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const headerBytes = new TextEncoder().encode(json)
  const out = new Uint8Array(8 + headerBytes.byteLength + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true)
  out.set(headerBytes, 8)
  let at = 8 + headerBytes.byteLength
  for (const blob of blobs) {
    out.set(blob, at)
    at += blob.byteLength
  }
  return out
}
