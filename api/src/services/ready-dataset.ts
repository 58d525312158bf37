/** @module Loads a ready dataset (record + manifest) for an analysis, with the 404 / 409 a user can act on. */
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { ApiError } from '../problem.ts'

export interface ReadyDataset {
  record: DatasetRecord
  manifest: Manifest
  /** Key prefix of the dataset's objects. */
  prefix: string
}

/** `role` names the parameter in error messages (e.g. 'a', 'b', 'dataset'). */
export async function loadReadyDataset(datasets: DatasetStore, tenant: string, id: string, role: string): Promise<ReadyDataset> {
  const record = await datasets.getRecord(tenant, id)
  if (!record) throw new ApiError(404, 'dataset-not-found', `dataset "${id}" (${role}) not found`)
  const manifest = record.status === 'ready' ? await datasets.getManifest(tenant, id) : null
  if (!manifest) {
    throw new ApiError(409, 'dataset-not-ready', `dataset "${id}" (${role}) is ${record.status}${record.error ? ` (${record.error.message})` : ''}; analyses need ready datasets`)
  }
  return { record, manifest, prefix: layout.datasetPrefix(tenant, id) }
}
