/** @module The facets file (stats/facets.bin): a JSON header, then int32 count vectors a slice's reader fetches by byte range. */
import { z } from 'zod'
import type { Slice } from '../../contract/slice.ts'
import {
  facetCounts,
  facetFieldsOf,
  facetSelection,
  facetSliceRows,
  type Facets,
  type FacetsHeader
} from '../../analysis/facets.ts'
import type { ObjectStore } from '../object-store.ts'
import { BoundedCache } from '../../util/bounded-cache.ts'

/**
 * Layout: "LBF1", the header's byte length (uint32 LE, a multiple of 4), the header (UTF-8 JSON, space-padded), then
 * int32 LE vectors of nLatents each: every document's first, then each field's values in header order; then per field
 * one byte per document, its value's index (255: none). Raw arrays, as in the by-latent sidecars: nothing to decode,
 * and a selection reads one contiguous range per field.
 */
const MAGIC = 'LBF1'
/** The first read takes this much, which holds the header of any facets file that fits the block budget in practice. */
const FIRST_READ_BYTES = 64 << 10

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()])
const Header = z.object({
  nLatents: z.number().int().positive(),
  docs: z.number().int().nonnegative(),
  tokens: z.number().nonnegative(),
  fields: z.array(
    z.object({
      key: z.string(),
      values: z.array(Scalar),
      docs: z.array(z.number().int().nonnegative()),
      tokens: z.array(z.number().nonnegative())
    })
  ),
  dropped: z.array(z.string()),
  droppedMore: z.boolean().optional()
})

const utf8 = new TextEncoder()

export function writeFacets(f: Facets): Uint8Array {
  const header: FacetsHeader = {
    nLatents: f.nLatents,
    docs: f.docs,
    tokens: f.tokens,
    fields: f.fields.map(({ key, values, docs, tokens }) => ({ key, values, docs, tokens })),
    dropped: f.dropped,
    ...(f.droppedMore ? { droppedMore: true } : {})
  }
  const json = utf8.encode(JSON.stringify(header))
  const padded = Math.ceil(json.length / 4) * 4
  const blocks = [f.total, ...f.fields.flatMap(x => x.counts)]
  const out = new Uint8Array(8 + padded + blocks.length * f.nLatents * 4 + f.fields.length * f.docs)
  out.set(utf8.encode(MAGIC), 0)
  const view = new DataView(out.buffer)
  view.setUint32(4, padded, true)
  out.fill(0x20, 8, 8 + padded)
  out.set(json, 8)
  let at = 8 + padded
  // The vectors as the platform holds them: little-endian wherever this runs (x86, ARM), as the sidecars assume.
  for (const b of blocks) {
    out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), at)
    at += b.byteLength
  }
  for (const x of f.fields) {
    if (x.rows.length !== f.docs) throw new Error(`facets: ${x.key} has ${x.rows.length} rows for ${f.docs} documents`)
    out.set(x.rows, at)
    at += f.docs
  }
  return out
}

/** Where a field's rows start, relative to the vectors' start. */
function rowsOffset(header: FacetsHeader, field: number): number {
  const blocks = 1 + header.fields.reduce((s, f) => s + f.values.length, 0)
  return blocks * header.nLatents * 4 + field * header.docs
}

function headerOf(bytes: Uint8Array, key: string): { header: FacetsHeader; start: number } | { need: number } {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC)
    throw new Error(`${key}: not a facets file (no "${MAGIC}" header)`)
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true)
  if (bytes.length < 8 + length) return { need: 8 + length }
  const header = Header.parse(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))))
  return { header, start: 8 + length }
}

/** The vectors [from, to) of a file whose vectors start at `start` (one range read). */
async function readBlocks(
  store: ObjectStore,
  key: string,
  header: FacetsHeader,
  start: number,
  from: number,
  to: number
): Promise<Int32Array[]> {
  if (to <= from) return []
  const size = header.nLatents * 4
  const bytes = await store.getRange(key, start + from * size, start + to * size)
  if (bytes.length !== (to - from) * size) throw new Error(`${key}: facets file is shorter than its header says`)
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice()
  const all = new Int32Array(aligned.buffer, aligned.byteOffset, (to - from) * header.nLatents)
  return Array.from({ length: to - from }, (_, i) => all.subarray(i * header.nLatents, (i + 1) * header.nLatents))
}

/** A whole facets file (for merging parts and versions). */
export async function readFacets(store: ObjectStore, key: string): Promise<Facets> {
  const bytes = await store.get(key)
  if (!bytes) throw new Error(`${key}: facets file not found`)
  const at = headerOf(bytes, key)
  if ('need' in at) throw new Error(`${key}: facets file is shorter than its header`)
  const { header, start } = at
  const n = header.nLatents
  if (bytes.length < start + rowsOffset(header, header.fields.length))
    throw new Error(`${key}: facets file is shorter than its header says`)
  const aligned = (bytes.byteOffset + start) % 4 === 0 ? bytes : bytes.slice()
  const blockAt = (b: number) => new Int32Array(aligned.buffer, aligned.byteOffset + start + b * n * 4, n).slice()
  let b = 1
  return {
    ...header,
    total: blockAt(0),
    fields: header.fields.map((f, i) => {
      const from = start + rowsOffset(header, i)
      return { ...f, counts: f.values.map(() => blockAt(b++)), rows: bytes.slice(from, from + header.docs) }
    })
  }
}

/**
 * The header of a facets file (its keys, values and their documents; no vectors) and where its vectors start. Kept per
 * store and key: a dataset's facets file is written once under a key of its own (a new version writes another), so a
 * user going from value to value pays one range read per slice, not two.
 */
export function readFacetsHeader(store: ObjectStore, key: string): Promise<{ header: FacetsHeader; start: number }> {
  let cache = headerCaches.get(store)
  if (!cache) headerCaches.set(store, (cache = new BoundedCache(HEADER_CACHE_BYTES, 1024)))
  return cache.get(
    key,
    async () => {
      let at = headerOf(await store.getRange(key, 0, FIRST_READ_BYTES), key)
      if ('need' in at) at = headerOf(await store.getRange(key, 0, at.need), key)
      if ('need' in at) throw new Error(`${key}: facets file is shorter than its header`)
      return at
    },
    at => at.start
  )
}
const HEADER_CACHE_BYTES = 16 << 20
const headerCaches = new WeakMap<ObjectStore, BoundedCache<{ header: FacetsHeader; start: number }>>()

/**
 * The documents, tokens and per-latent presence counts of a slice, from a facets file, or null when the slice is not
 * one facets answer (see facetSelection). Reads the header, then the selected field's vectors in one range (and every
 * document's vector for a complement).
 */
export async function readFacetSliceCounts(
  store: ObjectStore,
  key: string,
  slice: Slice
): Promise<{ docs: number; tokens: number; counts: Int32Array } | null> {
  const { header, start } = await readFacetsHeader(store, key)
  const selection = facetSelection(header, slice)
  if (!selection) return null
  let first = 1
  for (let f = 0; f < selection.field; f++) first += header.fields[f].values.length
  const lo = selection.values.length ? first + selection.values[0] : first
  const hi = selection.values.length ? first + selection.values[selection.values.length - 1] + 1 : first
  const [span, total] = await Promise.all([
    readBlocks(store, key, header, start, lo, hi),
    selection.complement ? readBlocks(store, key, header, start, 0, 1).then(b => b[0]) : null
  ])
  const blocks = selection.values.map(v => span[first + v - lo])
  return facetCounts(header, selection, blocks, total)
}

/**
 * The dataset rows (ascending) of a slice whose conditions are all on facet keys, from a facets file, or null (see
 * facetFieldsOf): the header, then each named key's byte per document (1 MB at 1M documents).
 */
export async function readFacetSliceRows(store: ObjectStore, key: string, slice: Slice): Promise<Int32Array | null> {
  const { header, start } = await readFacetsHeader(store, key)
  const fields = facetFieldsOf(header, slice)
  if (!fields) return null
  const bytes = new Map(
    await Promise.all(
      [...new Set(fields)].map(async field => {
        const from = start + rowsOffset(header, field)
        const rows = await store.getRange(key, from, from + header.docs)
        if (rows.length !== header.docs) throw new Error(`${key}: facets file is shorter than its header says`)
        return [field, rows] as const
      })
    )
  )
  return facetSliceRows(header, slice, field => bytes.get(field)!)
}
