/** @module What the encode steps share: their options, the permanent-failure error, and reading part markers. */
import type { DatasetRecord, DatasetStats, SourceSpec } from '@latentbase/shared/contract/dataset'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { DatasetDeletedError, type DatasetStore } from '@latentbase/shared/store/dataset-store'
import { PartMarker } from '@latentbase/shared/contract/encode-plan'
import { listParts } from '@latentbase/shared/store/encode-progress'
import type { LoadedEncoder } from '../encode/runtime.ts'
import { SourceError } from '../ingest/records.ts'
import type { OpenSourceOptions } from '../ingest/open-source.ts'

/** A failure that retrying cannot fix: the job is marked failed with this code and message. */
export class PermanentJobError extends Error {
  constructor(
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'PermanentJobError'
  }
}

export interface EncodeOptions {
  objects: ObjectStore
  datasets: DatasetStore
  encoder: LoadedEncoder
  allowLocalSources: boolean
  /** Cloud mode: sources are fetched through the URL guard (see OpenSourceOptions.guard). */
  sourceGuard?: OpenSourceOptions['guard']
  /** Documents per part (default 65,536): a part is one job for one worker, and is written as its own shards. */
  partDocuments?: number
  /** Reader tokens per part (default 2^20), so that parts cost about the same whatever the document lengths. */
  partTokens?: number
  /** Documents of a part tokenized and batched together (length-sorted within the chunk). */
  chunkDocuments?: number
  maxTokensPerBatch?: number
  maxBatchSize?: number
  /**
   * Run the next batch while the host merges this one and takes its examples. Default: when the encoder runs on a
   * GPU. On a CPU the host and onnxruntime's threads share the cores: measured slower on 2 cores (bench:gpt2, int8,
   * 32,768 tokens: 33.1 s against 29.8 s for the job).
   */
  overlapHost?: boolean
  progressIntervalMs?: number
  topExamplesPerLatent?: number
  signal?: AbortSignal
  log?: (line: string) => void
  /** First row of the documents planned (an appended batch continues the dataset's numbering); 0 by default. */
  rowOffset?: number
}

export interface EncodeResult {
  manifest: Manifest
  stats: DatasetStats
}

export const JSONL = { contentType: 'application/x-ndjson' }
export const JSON_TYPE = { contentType: 'application/json' }

export async function readJson<T>(
  objects: ObjectStore,
  key: string,
  schema: { parse(v: unknown): T }
): Promise<T | null> {
  const bytes = await objects.get(key)
  return bytes ? schema.parse(JSON.parse(new TextDecoder().decode(bytes))) : null
}

export { poolRolesOf } from '@latentbase/shared/contract/dataset'

/** The marker of a finished part, or null. */
export function readPartMarker(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>,
  part: number
): Promise<PartMarker | null> {
  return readJson(objects, layout.datasetPrefix(record.tenant, record.id) + layout.partDone(part), PartMarker)
}

/** Parts with a completion marker, from one listing. */
export async function finishedParts(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<Set<number>> {
  return (await listParts(objects, record)).done
}

/**
 * Run a step; should it fail because the dataset was deleted under it (a sweep removed what it reads), say that:
 * the caller drops the job instead of retrying it.
 */
export async function failIfDeleted<T>(
  record: DatasetRecord,
  datasets: DatasetStore,
  step: () => Promise<T>
): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (
      !(err instanceof DatasetDeletedError) &&
      (await datasets.isTombstoned(record.tenant, record.id).catch(() => false))
    ) {
      throw new DatasetDeletedError(record.tenant, record.id)
    }
    throw err
  }
}

export function isPermanent(err: unknown): err is PermanentJobError | SourceError {
  return err instanceof PermanentJobError || err instanceof SourceError
}
