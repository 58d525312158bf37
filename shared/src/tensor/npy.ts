/** @module Read NumPy .npy arrays and .npz archives (Gemma Scope's params.npz) into the same tensor entries as safetensors. */
import { crc32, inflateRawSync } from 'node:zlib'
import type { TensorEntry } from './safetensors.ts'

/** A .npy array: raw little-endian bytes in C order, as a safetensors entry so one widening path serves both. */
export type NpyArray = TensorEntry

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

const DTYPES: Record<string, { dtype: TensorEntry['dtype']; size: number }> = {
  f4: { dtype: 'F32', size: 4 },
  f2: { dtype: 'F16', size: 2 },
  f8: { dtype: 'F64', size: 8 },
  i4: { dtype: 'I32', size: 4 },
  i8: { dtype: 'I64', size: 8 }
}

/**
 * Parse the header dict numpy writes, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (16, 32), }`.
 * Only the three keys numpy emits are read; anything else about the array (structured or object dtypes,
 * Fortran order) is refused rather than misread.
 */
function parseHeader(text: string, what: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)
  if (!descr) {
    if (/'descr'\s*:\s*\[/.test(text)) throw new Error(`${what}: structured arrays (record dtypes) are not supported`)
    throw new Error(`${what}: .npy header has no 'descr' (${text.trim().slice(0, 120)})`)
  }
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)
  if (!fortran) throw new Error(`${what}: .npy header has no 'fortran_order'`)
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)
  if (!shape) throw new Error(`${what}: .npy header has no 'shape'`)
  const dims = shape[1]
    .split(',')
    .map(s => s.trim())
    .filter(s => s.length > 0)
    .map(s => {
      const n = Number(s.replace(/L$/, ''))
      if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: .npy shape (${shape[1]}) is not a tuple of sizes`)
      return n
    })
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims }
}

/** One .npy file (format versions 1, 2 and 3). Big-endian arrays are byte-swapped to little-endian. */
export function parseNpy(bytes: Uint8Array, what = 'array.npy'): NpyArray {
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new Error(`${what}: not a .npy file (bad magic)`)
  const major = bytes[6]
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let headerLen: number
  let start: number
  if (major === 1) {
    headerLen = view.getUint16(8, true)
    start = 10
  } else if (major === 2 || major === 3) {
    if (bytes.byteLength < 12) throw new Error(`${what}: truncated .npy header`)
    headerLen = view.getUint32(8, true)
    start = 12
  } else throw new Error(`${what}: .npy format version ${major}.${bytes[7]} is not supported (1, 2, 3)`)
  if (start + headerLen > bytes.byteLength) throw new Error(`${what}: .npy header runs past the end of the file`)
  // Versions 1 and 2 are latin-1; 3 is utf-8. The keys we read are ASCII either way.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen))
  const { descr, fortran, shape } = parseHeader(header, what)
  if (fortran)
    throw new Error(`${what}: fortran_order arrays are not supported (save with C order: np.ascontiguousarray)`)
  const order = descr[0]
  const code = descr.slice(1)
  if (code === 'O' || descr === 'O')
    throw new Error(`${what}: object arrays (dtype ${descr}) cannot be read: they are Python pickles`)
  const known = DTYPES[code]
  if (!known || !'<>=|'.includes(order))
    throw new Error(`${what}: dtype ${descr} is not supported (<f4, <f2, <f8, <i4, <i8)`)
  const count = shape.reduce((a, b) => a * b, 1)
  const dataStart = start + headerLen
  const byteLength = count * known.size
  if (dataStart + byteLength > bytes.byteLength) {
    throw new Error(
      `${what}: data for shape [${shape.join(', ')}] of ${descr} needs ${byteLength} bytes, file has ${bytes.byteLength - dataStart} (truncated?)`
    )
  }
  let data = bytes.subarray(dataStart, dataStart + byteLength)
  if (order === '>' && known.size > 1) {
    data = data.slice()
    const s = known.size
    for (let i = 0; i < data.length; i += s) data.subarray(i, i + s).reverse()
  }
  return { dtype: known.dtype, shape, bytes: data }
}

interface ZipEntry {
  name: string
  method: number
  compressedSize: number
  size: number
  crc: number
  localOffset: number
}

/** Zip64 extended information (header id 1): the 64-bit values replace those stored as 0xFFFFFFFF, in order. */
function zip64Extra(extra: Uint8Array, entry: ZipEntry, sizeMax: boolean, csizeMax: boolean, offsetMax: boolean): void {
  const v = new DataView(extra.buffer, extra.byteOffset, extra.byteLength)
  let p = 0
  while (p + 4 <= extra.byteLength) {
    const id = v.getUint16(p, true)
    const len = v.getUint16(p + 2, true)
    if (id === 1) {
      let q = p + 4
      const next = () => {
        const x = Number(v.getBigUint64(q, true))
        q += 8
        return x
      }
      if (sizeMax) entry.size = next()
      if (csizeMax) entry.compressedSize = next()
      if (offsetMax) entry.localOffset = next()
      return
    }
    p += 4 + len
  }
}

/** The central directory of a zip archive (zip64 included). */
export function zipEntries(bytes: Uint8Array, what = 'archive.zip'): ZipEntry[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let eocd = -1
  for (let p = bytes.byteLength - 22; p >= Math.max(0, bytes.byteLength - 22 - 65535); p--) {
    if (v.getUint32(p, true) === 0x06054b50) {
      eocd = p
      break
    }
  }
  if (eocd < 0) throw new Error(`${what}: not a zip archive (no end of central directory; truncated download?)`)
  let count = v.getUint16(eocd + 10, true)
  let cdOffset = v.getUint32(eocd + 16, true)
  if (count === 0xffff || cdOffset === 0xffffffff) {
    const locator = eocd - 20
    if (locator < 0 || v.getUint32(locator, true) !== 0x07064b50)
      throw new Error(`${what}: zip64 archive without a zip64 locator`)
    const z64 = Number(v.getBigUint64(locator + 8, true))
    if (v.getUint32(z64, true) !== 0x06064b50) throw new Error(`${what}: bad zip64 end of central directory`)
    count = Number(v.getBigUint64(z64 + 32, true))
    cdOffset = Number(v.getBigUint64(z64 + 48, true))
  }
  const entries: ZipEntry[] = []
  let p = cdOffset
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.byteLength || v.getUint32(p, true) !== 0x02014b50)
      throw new Error(`${what}: corrupt central directory at entry ${i}`)
    const nameLen = v.getUint16(p + 28, true)
    const extraLen = v.getUint16(p + 30, true)
    const commentLen = v.getUint16(p + 32, true)
    const entry: ZipEntry = {
      method: v.getUint16(p + 10, true),
      crc: v.getUint32(p + 16, true),
      compressedSize: v.getUint32(p + 20, true),
      size: v.getUint32(p + 24, true),
      localOffset: v.getUint32(p + 42, true),
      name: new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen))
    }
    zip64Extra(
      bytes.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen),
      entry,
      entry.size === 0xffffffff,
      entry.compressedSize === 0xffffffff,
      entry.localOffset === 0xffffffff
    )
    entries.push(entry)
    p += 46 + nameLen + extraLen + commentLen
  }
  return entries
}

/** Bytes of one zip entry: stored, or deflated (what np.savez_compressed writes); the CRC is checked. */
export function zipEntryData(bytes: Uint8Array, entry: ZipEntry, what = 'archive.zip'): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const at = entry.localOffset
  if (at + 30 > bytes.byteLength || v.getUint32(at, true) !== 0x04034b50)
    throw new Error(`${what}: ${entry.name}: bad local header`)
  const start = at + 30 + v.getUint16(at + 26, true) + v.getUint16(at + 28, true)
  if (start + entry.compressedSize > bytes.byteLength)
    throw new Error(`${what}: ${entry.name}: data runs past the end of the archive (truncated download?)`)
  const raw = bytes.subarray(start, start + entry.compressedSize)
  let data: Uint8Array
  if (entry.method === 0) data = raw
  else if (entry.method === 8) {
    const out = inflateRawSync(raw)
    data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  } else
    throw new Error(`${what}: ${entry.name}: compression method ${entry.method} is not supported (stored, deflate)`)
  if (data.byteLength !== entry.size)
    throw new Error(`${what}: ${entry.name}: ${data.byteLength} bytes, expected ${entry.size}`)
  if (crc32(data) >>> 0 !== entry.crc) throw new Error(`${what}: ${entry.name}: CRC mismatch (corrupt archive)`)
  return data
}

/** All arrays of an .npz archive, keyed as numpy keys them (the entry name without ".npy"). */
export function parseNpz(bytes: Uint8Array, what = 'params.npz'): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>()
  for (const entry of zipEntries(bytes, what)) {
    if (entry.name.endsWith('/')) continue
    const key = entry.name.replace(/\.npy$/, '')
    out.set(key, parseNpy(zipEntryData(bytes, entry, what), `${what}: ${entry.name}`))
  }
  return out
}
