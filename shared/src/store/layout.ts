/** @module Object keys of the latent store. Every key starts with the tenant. */

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/

export function assertSafeId(kind: string, id: string): void {
  if (!SAFE_ID.test(id)) throw new Error(`invalid ${kind} "${id}": letters, digits, _ and - only`)
}

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
  /** Inline documents posted with the request, kept until the job commits. */
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
  topExamples: () => 'examples/top-examples.parquet',
}
