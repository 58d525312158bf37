/** @module The benchmarks' inline dataset: its documents and its running record staged in a store, as the API leaves them for the encode job. */
import type { DatasetRecord, PoolingSpec } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'

export interface StagedDataset {
  id: string
  encoder: string
  docs: ReadonlyArray<object>
  pooling?: PoolingSpec
  /** createdAt / updatedAt (default now): a fixed time makes two stores byte-comparable. */
  at?: string
}

/** The running record of an inline dataset (tenant "local"), as encodeDataset takes it. */
export function inlineRecord(spec: StagedDataset): DatasetRecord {
  const at = spec.at ?? new Date().toISOString()
  return {
    id: spec.id,
    tenant: 'local',
    name: spec.id,
    status: 'running',
    encoder: spec.encoder,
    pooling: spec.pooling ?? { method: 'max', outlierNormRatio: 100 },
    source: { inline: spec.docs.length },
    createdAt: at,
    updatedAt: at,
    progress: { documents: { done: 0, total: spec.docs.length }, tokens: 0 },
    attempts: 1
  }
}

/** Write the documents (JSON lines) and the record; returns the record. */
export async function stageInlineDataset(
  objects: ObjectStore,
  datasets: DatasetStore,
  spec: StagedDataset
): Promise<DatasetRecord> {
  const record = inlineRecord(spec)
  await objects.put(layout.inlineInput('local', spec.id), spec.docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  return record
}
