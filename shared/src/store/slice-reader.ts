/** @module Reads what a slice needs from a dataset's shards (only the documents columns and latents it names) and evaluates it to dataset rows. */
import type { Manifest } from '../contract/manifest.ts'
import { sliceNeeds, type Slice } from '../contract/slice.ts'
import { evaluateSlice, type SliceData } from '../analysis/slice.ts'
import type { ObjectStore } from './object-store.ts'
import { readByLatent } from './latent-shards/read-by-latent.ts'
import { readDocuments } from './documents/read.ts'
import type { DocumentColumnName } from './documents/columns.ts'

/** What evaluating a slice read, for the cost figures in docs/slices.md. */
export interface SliceReadInfo {
  /** Documents whose metadata / token_count values were read (0 when the slice names neither). */
  documentsRead: number
  latentsRead: number
}

async function latentColumns(
  store: ObjectStore,
  prefix: string,
  manifest: Manifest,
  latents: number[]
): Promise<SliceData['latents']> {
  const out = new Map<number, { docs: Int32Array; values: Float32Array }>()
  if (!latents.length) return out
  const csc = await readByLatent(
    store,
    prefix,
    manifest.latents.byLatent,
    latents,
    { nDocs: manifest.documents.count, nLatents: manifest.encoder.dSae },
    { positions: false }
  )
  for (const l of latents)
    out.set(l, {
      docs: csc.docs.subarray(csc.indptr[l], csc.indptr[l + 1]),
      values: csc.values.subarray(csc.indptr[l], csc.indptr[l + 1])
    })
  return out
}

/**
 * The dataset rows (ascending) of a slice. Latent conditions read only those latents' pages of the by-latent shards;
 * metadata and token-count conditions read only those documents columns. When the slice is a conjunction with
 * latent-only parts, those are evaluated first and the documents columns are read only for the rows they leave.
 */
export async function readSliceRows(
  store: ObjectStore,
  prefix: string,
  manifest: Manifest,
  slice: Slice,
  info?: SliceReadInfo
): Promise<Int32Array> {
  const nDocs = manifest.documents.count
  const needs = sliceNeeds(slice)
  const columns: DocumentColumnName[] = [
    ...(needs.metadata ? ['metadata' as const] : []),
    ...(needs.tokens ? ['token_count' as const] : [])
  ]
  const latents = await latentColumns(store, prefix, manifest, needs.latents)
  if (info) {
    info.latentsRead = needs.latents.length
    info.documentsRead = 0
  }
  if (!columns.length) return evaluateSlice(slice, { nDocs, latents })

  const conjuncts = 'and' in slice ? slice.and : [slice]
  const latentOnly = conjuncts.filter(c => {
    const n = sliceNeeds(c)
    return !n.metadata && !n.tokens
  })
  let candidates: Int32Array | undefined
  if (latentOnly.length) {
    candidates = evaluateSlice(latentOnly.length === 1 ? latentOnly[0] : { and: latentOnly }, { nDocs, latents })
    if (candidates.length === 0) return candidates
  }
  // Rows outside the candidates have no document columns here, but the latent-only conjuncts exclude them anyway.
  const docs = await readDocuments(store, prefix, manifest.documents.files, candidates, columns)
  if (info) info.documentsRead = docs.row.length
  const documents: SliceData['documents'] = {
    row: docs.row,
    metadata: (docs as { metadata?: string[] }).metadata,
    tokenCount: (docs as { token_count?: Int32Array }).token_count
  }
  return evaluateSlice(slice, { nDocs, documents, latents })
}
