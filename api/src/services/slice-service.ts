/** @module Resolves a request's slice of a ready dataset to its rows, with the 400s a user can act on (unknown latent, unknown metadata field). */
import { metadataPath, sliceFields, sliceNeeds, sliceToText, type Slice } from '@latentbase/shared/contract/slice'
import { readSliceRows } from '@latentbase/shared/store/slice-reader'
import { readFacetSliceCounts, readFacetSliceRows, readFacetsHeader } from '@latentbase/shared/store/stats/facets'
import type { FacetsView } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { BoundedCache } from '@latentbase/shared/util/bounded-cache'
import { ApiError } from '../problem.ts'
import type { ReadyDataset } from './ready-dataset.ts'

/** A dataset, or the part of it a slice selects. */
export interface SlicedDataset extends ReadyDataset {
  slice?: {
    where: Slice
    /** Canonical text form, echoed in results. */
    text: string
    /** Dataset rows in the slice, ascending. */
    rows: Int32Array
  }
}

/**
 * Check a slice against the dataset (latent ids its encoder has; metadata keys the dataset was created with, when its
 * source listed them) before reading anything. `param` names the query parameter in the message (aWhere, where, ...).
 */
export function checkSliceFor(ds: ReadyDataset, where: Slice, param: string): void {
  const dSae = ds.manifest.encoder.dSae
  const bad = sliceNeeds(where).latents.find(l => l >= dSae)
  if (bad !== undefined) {
    throw new ApiError(
      400,
      'invalid-slice',
      `${param}: latent ${bad} does not exist: encoder ${ds.manifest.encoder.id} of dataset "${ds.record.id}" has latents 0-${dSae - 1}`
    )
  }
  const source = ds.record.source
  if ('url' in source) {
    const known = new Set(source.metadataFields)
    for (const field of sliceFields(where)) {
      const key = metadataPath(field)!
      if (!known.has(key) && !known.has(key.split('.')[0])) {
        throw new ApiError(
          400,
          'invalid-slice',
          `${param}: unknown field "${field}": dataset "${ds.record.id}" has ${known.size ? `metadata fields ${[...known].map(k => `metadata.${k}`).join(', ')}` : 'no metadata fields'} (list them in source.metadataFields when creating a dataset)`
        )
      }
    }
  }
}

/** The dataset restricted to a slice (or the whole dataset when `where` is undefined). */
export async function sliceDataset(
  objects: ObjectStore,
  ds: ReadyDataset,
  where: Slice | undefined,
  param: string
): Promise<SlicedDataset> {
  if (!where) return ds
  checkSliceFor(ds, where, param)
  const text = sliceToText(where)
  let cache = sliceRowsCaches.get(objects)
  if (!cache) sliceRowsCaches.set(objects, (cache = new BoundedCache(SLICE_ROWS_CACHE_BYTES, 1024)))
  // A ready dataset version never changes (ids are never reused), so its slices' rows are kept.
  const key = [ds.prefix, ds.record.createdAt, ds.manifest.documents.count, text].join('\u0000')
  const rows = await cache.get(
    key,
    async () =>
      (await fromFacets(ds, where, facetsKey => readFacetSliceRows(objects, facetsKey, where))) ??
      readSliceRows(objects, ds.prefix, ds.manifest, where),
    r => r.byteLength + key.length
  )
  return { ...ds, slice: { where, text, rows } }
}

/**
 * The documents, tokens and per-latent presence counts of a slice from the dataset's facets, without its rows, or null
 * when the slice is not on one faceted metadata key (or the dataset has no facets, or they cannot be read: the caller
 * then counts the slice's rows, which give the same figures). Call checkSliceFor first.
 */
export function facetSliceCounts(
  objects: ObjectStore,
  ds: ReadyDataset,
  where: Slice
): Promise<{ docs: number; tokens: number; counts: Int32Array } | null> {
  return fromFacets(ds, where, key => readFacetSliceCounts(objects, key, where))
}

/**
 * `read` from the dataset's facets file when the slice's metadata conditions are all on its keys, or null (no facets,
 * another slice, or an unreadable file, said once in the log: the caller then reads rows). `read` itself says null
 * for what it cannot answer (counts: one key only; rows: no token or latent condition).
 */
async function fromFacets<T>(
  ds: ReadyDataset,
  where: Slice,
  read: (facetsKey: string) => Promise<T | null>
): Promise<T | null> {
  const facets = ds.manifest.facets
  const fields = sliceFields(where)
  if (!facets || !fields.length || !fields.every(f => facets.fields.includes(metadataPath(f) ?? ''))) return null
  const key = ds.prefix + facets.key
  try {
    return await read(key)
  } catch (err) {
    if (!warnedFacets.has(key)) {
      if (warnedFacets.size >= 1024) warnedFacets.clear()
      warnedFacets.add(key)
      console.warn(`slices: facets ${key} unreadable (${(err as Error).message}); counting the slice's rows instead`)
    }
    return null
  }
}
const warnedFacets = new Set<string>()

/** GET /datasets/{id}/facets: each facet key's values with their documents and the slice selecting them (header only). */
export async function facetsViewOf(objects: ObjectStore, ds: ReadyDataset): Promise<FacetsView> {
  const documents = ds.manifest.documents.count
  const facets = ds.manifest.facets
  if (!facets) return { dataset: ds.record.id, documents, stored: false, fields: [], other: [] }
  const { header } = await readFacetsHeader(objects, ds.prefix + facets.key)
  return {
    dataset: ds.record.id,
    documents,
    stored: true,
    fields: header.fields.map(f => {
      const field = `metadata.${f.key}`
      const values = f.values
        .map((value, i) => ({
          value,
          documents: f.docs[i],
          meanTokens: f.docs[i] ? f.tokens[i] / f.docs[i] : 0,
          where: sliceToText({ field, eq: value })
        }))
        .sort((a, b) => b.documents - a.documents || (a.where < b.where ? -1 : a.where > b.where ? 1 : 0))
      return { field, values, missing: header.docs - f.docs.reduce((s, n) => s + n, 0) }
    }),
    other: header.dropped.map(k => `metadata.${k}`)
  }
}

/**
 * Rows of slices evaluated in this process, per store: an explorer asks the same slice for page after page (each
 * latent of a sliced diff), and a metadata slice reads and parses its column (~0.1 s at 100k documents) every time.
 * Callers only read the rows.
 */
const SLICE_ROWS_CACHE_BYTES = 64 << 20
const sliceRowsCaches = new WeakMap<ObjectStore, BoundedCache<Int32Array>>()

/** Documents an analysis of this (sliced) dataset covers. */
export const documentsOf = (ds: SlicedDataset): number =>
  ds.slice ? ds.slice.rows.length : ds.manifest.documents.count

/** The head every result over one (sliced) dataset starts with: which dataset, which slice, which encoder, how many documents. */
export function resultHead(
  ds: SlicedDataset,
  documents: number
): { dataset: string; where?: string; encoder: string; documents: number } {
  return {
    dataset: ds.record.id,
    ...(ds.slice ? { where: ds.slice.text } : {}),
    encoder: ds.manifest.encoder.id,
    documents
  }
}
