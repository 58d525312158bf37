/** @module Object keys of the latent store. Every key starts with the tenant. */

import { assertSafeId } from '../contract/id.ts'

export { assertSafeId }

export const layout = {
  /** Prefix of everything a dataset owns (deleted as a whole). */
  datasetPrefix(tenant: string, datasetId: string): string {
    assertSafeId('tenant', tenant)
    assertSafeId('dataset id', datasetId)
    return `${tenant}/datasets/${datasetId}/`
  },
  datasetsPrefix(tenant: string): string {
    assertSafeId('tenant', tenant)
    return `${tenant}/datasets/`
  },
  /** The dataset record: spec and job state, mutable while the job runs. */
  record: (tenant: string, id: string) => `${layout.datasetPrefix(tenant, id)}dataset.json`,
  /** Inline documents posted with the request, kept until the job commits (then swept with the bookkeeping). */
  inlineInput: (tenant: string, id: string) => `${layout.datasetPrefix(tenant, id)}input/documents.jsonl`,
  /** Written last: its presence means the dataset is complete. */
  manifest: (tenant: string, id: string) => `${layout.datasetPrefix(tenant, id)}manifest.json`,
  /** Outside the dataset prefix, so deleting the dataset leaves it behind. */
  tombstone(tenant: string, id: string): string {
    assertSafeId('tenant', tenant)
    assertSafeId('dataset id', id)
    return `${tenant}/tombstones/${id}.json`
  },
  /** Shard keys are relative to the dataset prefix and deterministic, so a re-run overwrites, never duplicates. */
  documentsShard: (part: number) => `documents/part-${String(part).padStart(5, '0')}.parquet`,
  byDocumentShard: (part: number) => `latents/by-document/part-${String(part).padStart(5, '0')}.parquet`,
  byLatentShard: (part: number) => `latents/by-latent/part-${String(part).padStart(5, '0')}.parquet`,
  latentStats: () => 'stats/latent-stats.parquet',
  /** Every latent's p90 as float32 little-endian, written with the statistics: search reads 4 bytes a latent, not histograms. */
  latentP90: () => 'stats/latent-p90.f32',
  /** While encoding runs (see contract/encode-plan): the plan, staged part inputs, part markers, progress and stats. */
  encodePlan: () => 'plan.json',
  partInput: (part: number) => `input/part-${String(part).padStart(5, '0')}.jsonl`,
  /** Written once every part of the plan is queued: a redelivered plan job that finds it has nothing left to queue. */
  partsQueued: () => 'parts/queued.json',
  partDone: (part: number) => `parts/part-${String(part).padStart(5, '0')}.done.json`,
  partProgress: (part: number) => `parts/part-${String(part).padStart(5, '0')}.progress.json`,
  partError: (part: number) => `parts/part-${String(part).padStart(5, '0')}.error.json`,
  partStats: (part: number) => `parts/part-${String(part).padStart(5, '0')}.stats.parquet`,
  /** The part's facets (see analysis/facets), merged into the dataset's at finalize. */
  partFacets: (part: number) => `parts/part-${String(part).padStart(5, '0')}.facets.bin`,
  /** The part's top examples captured while encoding: each latent's top documents of the part with their windows. */
  partExamples: (part: number) => `parts/part-${String(part).padStart(5, '0')}.examples.parquet`,
  finalizeClaim: () => 'finalize.json',
  /** What the sweep after the manifest commit deletes (prefixes end with '/'). */
  encodeBookkeeping: ['input/', 'parts/', 'plan.json', 'finalize.json'] as readonly string[],
  topExamples: () => 'examples/top-examples.parquet',
  /** Per-latent presence counts of each value of the few-valued metadata keys: a metadata slice's diff without its rows. */
  facets: () => 'stats/facets.bin'
}

const MAX_KEY_BYTES = 1024
const utf8 = new TextEncoder()

/**
 * Why a key is unusable, or null when it is fine. Shared by every ObjectStore so that a key valid on S3
 * is valid on disk too, and no key can climb out of a filesystem root ('..', leading '/', empty segments).
 */
export function keyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'empty key'
  if (utf8.encode(key).length > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`
  if (key.startsWith('/')) return 'starts with "/"'
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a store key must hold no control character
  if (/[\u0000-\u001f\u007f\\]/.test(key)) return 'contains a control character or "\\"'
  for (const segment of key.split('/')) {
    if (segment === '') return 'has an empty segment'
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`
  }
  return null
}

export function assertValidKey(key: string): void {
  const problem = keyProblem(key)
  if (problem) throw new Error(`invalid object key ${JSON.stringify(key)}: ${problem}`)
}

/** A store-wide key prefix as given in config ('' or 'a/b' or 'a/b/'), normalized to '' or ending in '/', and checked. */
export function normalizeStorePrefix(prefix = ''): string {
  const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
  if (p) assertValidPrefix(p)
  return p
}

/** A list prefix is '' or a key prefix: the same rules, except that it may end with '/'. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return
  assertValidKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
}

/** Absolute key of a file named relative to a dataset prefix (as in ShardFile.key). */
export function datasetKey(tenant: string, datasetId: string, relativeKey: string): string {
  const key = layout.datasetPrefix(tenant, datasetId) + relativeKey
  assertValidKey(key)
  return key
}
