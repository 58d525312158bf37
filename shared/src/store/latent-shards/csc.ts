/**
 * @module The latent-major sidecar of a by-latent shard (`part-NNNNN.csc` beside `part-NNNNN.parquet`): the shard's
 * (latent, doc, value) entries as raw little-endian arrays, so that reading a few latents' documents is one ranged
 * read per latent and file with nothing to decode.
 */
import type { ShardFile } from '../../contract/manifest.ts'
import type { ObjectStore } from '../object-store.ts'
import type { KeyRange } from '../format.ts'
import type { LatentPart } from './parts.ts'

/**
 * Why a sidecar: reading ten latents of a 100k-document dataset from the Parquet shard decodes ~300k rows in ~200
 * pages (every page holds ~4,000 rows of many latents, and each page read goes through a Parquet reader's planning,
 * page header and decoders). Measured on the 2-core machine in a fresh process: ~110-150 ms from the Parquet shards
 * against ~4 ms from the sidecars, whose blocks are the exact bytes wanted. The price is ~8 bytes per entry on top of
 * the shards. The Parquet shard stays the format of record (positions, DuckDB and other readers).
 *
 * Layout: 16-byte header (magic `LBCSC`, 1, 0, 0; nLatents uint32; nnz uint32), indptr int32 [nLatents + 1] (entry
 * offsets, the shard's row order: by latent, then document), then latent l's block at byte base + 8 * indptr[l]:
 * its documents int32 [n] (dataset rows) followed by its values float32 [n], n = indptr[l + 1] - indptr[l].
 */
const MAGIC = [0x4c, 0x42, 0x43, 0x53, 0x43, 1, 0, 0] // 'LBCSC', format 1
const HEADER_BYTES = 16

/** The sidecar's key: the by-latent shard's key with `.csc` for `.parquet`. */
export function cscKey(shardKey: string): string {
  return shardKey.replace(/\.parquet$/, '') + '.csc'
}

/** Sidecar bytes of a CSC (documents already in dataset rows, each latent's entries in the shard's order). */
export function writeCsc(indptr: Int32Array, docs: Int32Array, values: Float32Array): Uint8Array {
  const nLatents = indptr.length - 1
  const nnz = indptr[nLatents]
  if (docs.length !== nnz || values.length !== nnz) throw new Error('CSC arrays disagree with indptr')
  const base = HEADER_BYTES + 4 * (nLatents + 1)
  const out = new Uint8Array(base + 8 * nnz)
  out.set(MAGIC, 0)
  const view = new DataView(out.buffer)
  view.setUint32(8, nLatents, true)
  view.setUint32(12, nnz, true)
  for (let l = 0; l <= nLatents; l++) view.setInt32(HEADER_BYTES + 4 * l, indptr[l], true)
  const bytesOf = (a: Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
  for (let l = 0; l < nLatents; l++) {
    const a = indptr[l]
    const b = indptr[l + 1]
    if (b === a) continue
    out.set(bytesOf(docs.subarray(a, b)), base + 8 * a)
    out.set(bytesOf(values.subarray(a, b)), base + 8 * a + 4 * (b - a))
  }
  return out
}

/** Header and indptr of sidecars, per store by key and size (a rewritten sidecar of another size is read again). */
const INDEX_CACHE_BYTES = 64 << 20
interface IndexEntry {
  indptr: Promise<Int32Array>
  /** Bytes held once loaded (0 before). */
  bytes: number
}
let indexCaches = new WeakMap<ObjectStore, { entries: Map<string, IndexEntry>; bytes: number }>()

/** Drop the cached indexes of one store, or of every store (with the shards' footers: see clearShardMetadataCache). */
export function clearCscIndexCache(store?: ObjectStore): void {
  if (store) indexCaches.delete(store)
  else indexCaches = new WeakMap()
}

async function loadIndex(store: ObjectStore, key: string, bytes: number): Promise<Int32Array> {
  const head = await store.getRange(key, 0, HEADER_BYTES)
  if (head.length < HEADER_BYTES || MAGIC.some((m, i) => head[i] !== m))
    throw new Error(`${key} is not a latent sidecar of format 1`)
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const nLatents = view.getUint32(8, true)
  const nnz = view.getUint32(12, true)
  const base = HEADER_BYTES + 4 * (nLatents + 1)
  if (base + 8 * nnz !== bytes) throw new Error(`${key}: ${bytes} bytes, its header says ${base + 8 * nnz}`)
  const raw = await store.getRange(key, HEADER_BYTES, base)
  const rv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const indptr = new Int32Array(nLatents + 1)
  for (let l = 0; l <= nLatents; l++) indptr[l] = rv.getInt32(4 * l, true)
  if (indptr[0] !== 0 || indptr[nLatents] !== nnz) throw new Error(`${key}: its indptr does not span ${nnz} entries`)
  return indptr
}

function cscIndex(store: ObjectStore, key: string, bytes: number): Promise<Int32Array> {
  let cache = indexCaches.get(store)
  if (!cache) indexCaches.set(store, (cache = { entries: new Map(), bytes: 0 }))
  const c = cache
  const id = `${key}\u0000${bytes}`
  const hit = c.entries.get(id)
  if (hit) {
    c.entries.delete(id)
    c.entries.set(id, hit)
    return hit.indptr
  }
  const entry: IndexEntry = { indptr: loadIndex(store, key, bytes), bytes: 0 }
  c.entries.set(id, entry)
  entry.indptr.then(
    indptr => {
      if (c.entries.get(id) !== entry) return
      entry.bytes = indptr.byteLength
      c.bytes += entry.bytes
      for (const [k, e] of c.entries) {
        if (c.bytes <= INDEX_CACHE_BYTES || e === entry) break
        c.entries.delete(k)
        c.bytes -= e.bytes
      }
    },
    () => {
      if (c.entries.get(id) === entry) c.entries.delete(id)
    }
  )
  return entry.indptr
}

/** Runs of consecutive wanted latents [first, last] below nLatents: each run is one contiguous range of the sidecar. */
function latentRuns(want: Int32Array | KeyRange, nLatents: number): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  if (!(want instanceof Int32Array)) {
    const end = Math.min(want.end, nLatents)
    if (end > want.start) runs.push([Math.max(0, want.start), end - 1])
    return runs
  }
  for (const l of want) {
    if (l < 0 || l >= nLatents) continue
    const last = runs[runs.length - 1]
    if (last && l === last[1] + 1) last[1] = l
    else if (!last || l > last[1]) runs.push([l, l])
  }
  return runs
}

/** Bytes of unwanted entries read rather than starting another read (a GET on S3 or R2 costs about as much as ~64 KB). */
const COALESCE_GAP_BYTES = 64 << 10

/**
 * The wanted latents' entries of one by-latent shard from its sidecar, as LatentParts whose `position` holds each
 * entry's row in the shard (what readByLatent's fileRows reads hand back), and the sidecar's latent count. `want` is
 * sorted ascending.
 */
export async function readCscLatents(
  store: ObjectStore,
  datasetPrefix: string,
  file: ShardFile,
  want: Int32Array | KeyRange
): Promise<{ parts: LatentPart[]; nLatents: number }> {
  const key = datasetPrefix + cscKey(file.key)
  const indptr = await cscIndex(store, key, file.cscBytes!)
  const nLatents = indptr.length - 1
  const base = HEADER_BYTES + 4 * (nLatents + 1)
  // Runs of wanted latents close to each other in the file are read together, the bytes between them skipped: a query
  // of a few hundred scattered latents (a document's own, for similar documents) is then tens of reads, not hundreds.
  const runs = latentRuns(want, nLatents).filter(([first, last]) => indptr[last + 1] > indptr[first])
  const groups: Array<Array<[number, number]>> = []
  for (const run of runs) {
    const group = groups.at(-1)
    const gapBytes = group ? 8 * (indptr[run[0]] - indptr[group.at(-1)![1] + 1]) : Infinity
    if (group && gapBytes <= COALESCE_GAP_BYTES) group.push(run)
    else groups.push([run])
  }
  const reads = groups.map(async group => {
    const a = indptr[group[0][0]]
    const raw = await store.getRange(key, base + 8 * a, base + 8 * indptr[group.at(-1)![1] + 1])
    // Typed views need 4-byte alignment: a store handing back an unaligned slice is copied once.
    const bytes = raw.byteOffset % 4 === 0 ? raw : raw.slice()
    const parts: LatentPart[] = []
    for (const [first, last] of group) {
      for (let l = first; l <= last; l++) {
        const n = indptr[l + 1] - indptr[l]
        if (n === 0) continue
        const at = bytes.byteOffset + 8 * (indptr[l] - a)
        const position = new Int32Array(n)
        for (let k = 0; k < n; k++) position[k] = indptr[l] + k
        parts.push({
          latent: new Int32Array(n).fill(l),
          doc: new Int32Array(bytes.buffer, at, n),
          value: new Float32Array(bytes.buffer, at + 4 * n, n),
          position
        })
      }
    }
    return parts
  })
  return { parts: (await Promise.all(reads)).flat(), nLatents }
}

/**
 * Every latent's entries of one by-latent shard, from its sidecar, in reads of about `chunkBytes` (runs of whole
 * latents; the next read is in flight while `visit` runs on this one). For each latent with n entries,
 * `visit(latent, words, floats, at, n)`: its documents are `words[at .. at + n)` and its values `floats[at + n .. at +
 * 2n)`, two views of the same chunk (a view per latent would cost more than the counting). What a pass over all of a
 * dataset's entries holds is two chunks, whatever the dataset's size.
 */
export async function scanCscLatents(
  store: ObjectStore,
  datasetPrefix: string,
  file: ShardFile,
  chunkBytes: number,
  visit: (latent: number, words: Int32Array, floats: Float32Array, at: number, n: number) => void
): Promise<void> {
  const key = datasetPrefix + cscKey(file.key)
  const indptr = await cscIndex(store, key, file.cscBytes!)
  const nLatents = indptr.length - 1
  const base = HEADER_BYTES + 4 * (nLatents + 1)
  const runs: Array<[number, number]> = []
  for (let first = 0; first < nLatents; ) {
    let last = first
    while (last + 1 < nLatents && 8 * (indptr[last + 2] - indptr[first]) <= chunkBytes) last++
    if (indptr[last + 1] > indptr[first]) runs.push([first, last])
    first = last + 1
  }
  const read = ([first, last]: [number, number]) => {
    const pending = store.getRange(key, base + 8 * indptr[first], base + 8 * indptr[last + 1])
    // Awaited on the next turn; a failure meanwhile must not count as unhandled.
    pending.catch(() => {})
    return pending
  }
  let next = runs.length ? read(runs[0]) : null
  for (let r = 0; r < runs.length; r++) {
    const raw = await next!
    next = r + 1 < runs.length ? read(runs[r + 1]) : null
    const bytes = raw.byteOffset % 4 === 0 ? raw : raw.slice()
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2)
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2)
    const [first, last] = runs[r]
    const a = indptr[first]
    for (let l = first; l <= last; l++) {
      const n = indptr[l + 1] - indptr[l]
      if (n !== 0) visit(l, words, floats, 2 * (indptr[l] - a), n)
    }
  }
}
