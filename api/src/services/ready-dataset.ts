/** @module Loads a ready dataset (record + manifest) for an analysis, with the 404 / 409 a user can act on. */
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { parseDatasetRef } from '@latentbase/shared/contract/versions'
import { getManifestAt, versionOf } from '@latentbase/shared/store/versions'
import { ApiError } from '../problem.ts'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readByDocument, type PooledCsrSlice } from '@latentbase/shared/store/latent-shards/read-by-document'
import { ID_RULE, ResourceId } from '@latentbase/shared/contract/id'

/** A dataset's record by id, in any state: 404 when missing, deleted, or not a dataset id (never a store lookup then). */
export async function loadDatasetRecord(datasets: DatasetStore, tenant: string, id: string): Promise<DatasetRecord> {
  if (!ResourceId.safeParse(id).success)
    throw new ApiError(
      404,
      'dataset-not-found',
      `dataset "${id.length > 80 ? `${id.slice(0, 80)}...` : id}" not found: dataset ids are ${ID_RULE}`
    )
  const record = await datasets.getRecord(tenant, id)
  if (!record) throw new ApiError(404, 'dataset-not-found', `dataset "${id}" not found`)
  return record
}

export interface ReadyDataset {
  record: DatasetRecord
  manifest: Manifest
  /** Key prefix of the dataset's objects. */
  prefix: string
}

/** Dataset rows [start, end) from the by-document shards (only the row groups that hold them are read). */
export function readDocumentRange(
  objects: ObjectStore,
  { manifest, prefix }: Pick<ReadyDataset, 'manifest' | 'prefix'>,
  start: number,
  end: number
): Promise<PooledCsrSlice> {
  return readByDocument(
    objects,
    prefix,
    manifest.latents.byDocument,
    { start, end },
    { nDocs: manifest.documents.count, nLatents: manifest.encoder.dSae }
  )
}

/**
 * `id` is a dataset reference: `ds_1` (its latest version) or `ds_1@3` (version 3; the record's id then reads
 * `ds_1@3`, so that answers name the version they read). `role` names the parameter in error messages ('a', 'dataset').
 */
export async function loadReadyDataset(
  datasets: DatasetStore,
  tenant: string,
  id: string,
  role: string
): Promise<ReadyDataset> {
  // A malformed reference falls through to the store, whose id check answers it (400) as before.
  const ref = parseDatasetRef(id) ?? { id }
  const record = await datasets.getRecord(tenant, ref.id)
  if (!record) throw new ApiError(404, 'dataset-not-found', `dataset "${ref.id}" (${role}) not found`)
  const manifest = record.status === 'ready' ? await getManifestAt(datasets, tenant, ref.id, ref.version) : null
  if (!manifest && record.status === 'ready' && ref.version !== undefined) {
    const latest = record.version ?? 1
    throw new ApiError(
      404,
      'version-not-found',
      `dataset "${ref.id}" (${role}) has no version ${ref.version}: its versions are 1-${latest} (${ref.id}@${latest} is the latest)`
    )
  }
  if (!manifest) {
    throw new ApiError(
      409,
      'dataset-not-ready',
      `dataset "${id}" (${role}) is ${record.status}${record.error ? ` (${record.error.message})` : ''}; analyses need ready datasets`
    )
  }
  const pinned = ref.version !== undefined ? { ...record, id: `${ref.id}@${versionOf(manifest)}` } : record
  return { record: pinned, manifest, prefix: layout.datasetPrefix(tenant, ref.id) }
}

/**
 * The 501 of an answer that must encode with the dataset's encoder (a text, a document token by token) where this
 * process does not hold it as it was: a Worker or Lambda holds none; the local server may have lost or changed it.
 */
export function encoderNotHeld(
  { manifest, record }: Pick<ReadyDataset, 'manifest' | 'record'>,
  what: string,
  instead: string
): ApiError {
  return new ApiError(
    501,
    'encoder-not-held',
    `${what} needs encoder ${manifest.encoder.id} as dataset "${record.id}" was encoded, and this process does not hold it: a deployment without encoders (a Worker, a Lambda) never does; the local server holds those it loaded (GET /encoders), unless the encoder's files changed since (another fingerprint). ${instead}`
  )
}
