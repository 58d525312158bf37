/** @module Tests for dataset versions in the store: the batch's scoped view of keys, manifests at a version, the commit switch (idempotent, never backwards, refused after a delete) and the newer-version probe. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { STORE_VERSION, type Manifest } from '../contract/manifest.ts'
import { parseDatasetRef, formatDatasetRef } from '../contract/versions.ts'
import { DatasetDeletedError, DatasetStore } from './dataset-store.ts'
import { layout } from './layout.ts'
import { MemoryObjectStore } from './memory-store.ts'
import {
  commitVersion,
  getManifestAt,
  hasNewerVersion,
  versionInfos,
  versionLayout,
  VersionScopedStore
} from './versions.ts'

function manifest(version: number, count: number): Manifest {
  return {
    storeVersion: STORE_VERSION,
    datasetId: 'ds_1',
    tenant: 'local',
    createdAt: new Date(0).toISOString(),
    encoder: { id: 'demo', hookName: 'h', dSae: 8, architecture: 'relu' },
    encoderFingerprint: 'abc',
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 64,
    longDocuments: 'truncate',
    documents: { count, tokens: count * 10, files: [] },
    latents: { nnz: 0, byDocument: [], byLatent: [] },
    stats: { key: layout.latentStats(), histogramEdges: [1e-4, 1e4] },
    summary: {},
    ...(version > 1
      ? {
          version,
          versions: Array.from({ length: version }, (_, i) => ({
            version: i + 1,
            documents: { start: i * 3, count: 3 },
            tokens: 30,
            createdAt: new Date(0).toISOString(),
            dir: i ? versionLayout.dir(i + 1) : '',
            statsKey: i ? `${versionLayout.dir(i + 1)}stats/latent-stats.parquet` : layout.latentStats()
          }))
        }
      : {})
  }
}

test('dataset references: ds_1 and ds_1@3 parse, anything else does not, and print back the same', () => {
  assert.deepEqual(parseDatasetRef('ds_1'), { id: 'ds_1' })
  assert.deepEqual(parseDatasetRef('ds_1@3'), { id: 'ds_1', version: 3 })
  for (const bad of [
    'ds_1@',
    'ds_1@0',
    'ds_1@03',
    'ds_1@-1',
    'ds_1@1.5',
    'ds_1@x',
    '@3',
    'ds/1@2',
    'ds_1@2@3',
    'ds_1@1234567'
  ]) {
    assert.equal(parseDatasetRef(bad), null, bad)
  }
  assert.equal(formatDatasetRef({ id: 'ds_1', version: 3 }), 'ds_1@3')
  assert.equal(formatDatasetRef({ id: 'ds_1' }), 'ds_1')
})

test('the scoped store moves every key of the dataset but its record into the version folder, and lists them back', async () => {
  const inner = new MemoryObjectStore()
  const scoped = new VersionScopedStore(inner, 'local', 'ds_1', 2)
  const root = layout.datasetPrefix('local', 'ds_1')
  await scoped.put(root + 'plan.json', '{}')
  await scoped.put(root + 'documents/part-00000.parquet', 'x')
  await scoped.put(layout.record('local', 'ds_1'), '{"r":1}')
  await scoped.put(layout.tombstone('local', 'ds_other'), '{}')
  assert.deepEqual(
    (await inner.list(root)).map(o => o.key),
    [`${root}dataset.json`, `${root}versions/00002/documents/part-00000.parquet`, `${root}versions/00002/plan.json`]
  )
  assert.deepEqual(
    (await scoped.list(root)).map(o => o.key),
    [`${root}documents/part-00000.parquet`, `${root}plan.json`]
  )
  assert.equal(await scoped.head(root + 'plan.json'), 2)
  assert.ok(await inner.get(layout.tombstone('local', 'ds_other')), 'keys outside the dataset are not moved')
  await scoped.delete(root + 'plan.json')
  assert.equal(await inner.head(`${root}versions/00002/plan.json`), null)
})

test('commit: versions kept under versions/, manifest.json switched last; idempotent, never backwards; pinned reads', async () => {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const v1 = manifest(1, 3)
  await datasets.commitManifest('local', 'ds_1', v1)
  assert.equal(await hasNewerVersion(objects, 'local', 'ds_1', 1), false)
  const v2 = manifest(2, 6)
  await commitVersion(datasets, v2, v1)
  await commitVersion(datasets, v2, v1) // a redelivery finds it done
  assert.equal(await hasNewerVersion(objects, 'local', 'ds_1', 1), true)
  assert.equal((await getManifestAt(datasets, 'local', 'ds_1'))!.version, 2)
  assert.equal((await getManifestAt(datasets, 'local', 'ds_1', 1))!.documents.count, 3)
  assert.equal((await getManifestAt(datasets, 'local', 'ds_1', 2))!.documents.count, 6)
  assert.equal(await getManifestAt(datasets, 'local', 'ds_1', 3), null)
  assert.deepEqual(
    versionInfos(v2).map(v => [v.version, v.documents.start, v.documents.count]),
    [
      [1, 0, 3],
      [2, 3, 3]
    ]
  )
  assert.deepEqual(
    versionInfos(v1).map(v => [v.version, v.documents.count]),
    [[1, 3]],
    'never appended: one version'
  )
  // A late commit of version 2 after version 3 leaves manifest.json at 3.
  const v3 = manifest(3, 9)
  await commitVersion(datasets, v3, v2)
  await commitVersion(datasets, v2, v1)
  assert.equal((await datasets.getManifest('local', 'ds_1'))!.version, 3)
  await datasets.deleteDataset('local', 'ds_1')
  await assert.rejects(commitVersion(datasets, manifest(4, 12), v3), DatasetDeletedError)
})
