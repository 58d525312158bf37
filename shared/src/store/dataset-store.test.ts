/** @module Tests for the dataset facade: records, manifests, tombstones and deletion order. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { DatasetRecord } from '../contract/dataset.ts'
import { STORE_VERSION, type Manifest } from '../contract/manifest.ts'
import { DatasetDeletedError, DatasetStore } from './dataset-store.ts'
import { FsObjectStore } from './fs-store.ts'
import { layout } from './layout.ts'
import { MemoryObjectStore } from './memory-store.ts'
import type { ObjectStore, PutOptions } from './object-store.ts'

const base = await mkdtemp(path.join(tmpdir(), 'lb-dataset-store-'))
after(() => rm(base, { recursive: true, force: true }))

function record(id: string, tenant = 'local'): DatasetRecord {
  const now = new Date(0).toISOString()
  return {
    id,
    tenant,
    name: `set ${id}`,
    status: 'queued',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: 3 },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: 0, total: 3 }, tokens: 0 },
    attempts: 0
  }
}

function manifest(id: string, tenant = 'local'): Manifest {
  return {
    storeVersion: STORE_VERSION,
    datasetId: id,
    tenant,
    createdAt: new Date(0).toISOString(),
    encoder: { id: 'demo', hookName: 'blocks.1.hook_resid_post', dSae: 64, architecture: 'relu' },
    encoderFingerprint: 'abc',
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 512,
    longDocuments: 'truncate',
    documents: {
      count: 3,
      tokens: 30,
      files: [
        {
          key: layout.documentsShard(0),
          rows: 3,
          bytes: 10,
          rowGroups: [{ rowStart: 0, rowCount: 3, first: 0, last: 2 }],
          docStart: 0,
          docCount: 3
        }
      ]
    },
    latents: { nnz: 0, byDocument: [], byLatent: [] },
    stats: { key: layout.latentStats(), histogramEdges: [1e-4, 1e4] },
    summary: {}
  }
}

test('records: put, get, list per tenant; invalid records are refused on write', async () => {
  const ds = new DatasetStore(new MemoryObjectStore())
  assert.equal(await ds.getRecord('local', 'a1'), null)
  await ds.putRecord(record('a1'))
  await ds.putRecord(record('b2'))
  await ds.putRecord(record('c3', 'other'))
  assert.deepEqual(await ds.getRecord('local', 'a1'), record('a1'))
  assert.deepEqual(
    (await ds.listRecords('local')).map(r => r.id),
    ['a1', 'b2']
  )
  assert.deepEqual(
    (await ds.listRecords('other')).map(r => r.id),
    ['c3']
  )
  await assert.rejects(ds.putRecord({ ...record('x'), status: 'exploded' } as unknown as DatasetRecord))
  await assert.rejects(ds.putRecord(record('../escape')), /invalid dataset id/)
})

test('manifests: validated on commit and on read, null until committed', async () => {
  const objects = new MemoryObjectStore()
  const ds = new DatasetStore(objects)
  await ds.putRecord(record('m1'))
  assert.equal(await ds.getManifest('local', 'm1'), null)
  await ds.commitManifest('local', 'm1', manifest('m1'))
  assert.deepEqual(await ds.getManifest('local', 'm1'), manifest('m1'))
  await assert.rejects(ds.commitManifest('local', 'm1', { ...manifest('m1'), storeVersion: 99 } as unknown as Manifest))
  await assert.rejects(ds.commitManifest('local', 'zz', manifest('m1')), /committed as/)
  await objects.put(layout.manifest('local', 'm1'), '{"storeVersion":1}')
  await assert.rejects(ds.getManifest('local', 'm1'))
})

test('manifests read again: equal but unshared objects; a rewritten manifest is validated again', async () => {
  const objects = new MemoryObjectStore()
  const ds = new DatasetStore(objects)
  await ds.putRecord(record('m2'))
  // An unknown key in the stored text: validation strips it, and so must every later read of the same text.
  await objects.put(layout.manifest('local', 'm2'), JSON.stringify({ ...manifest('m2'), extra: 'dropped' }))
  const first = (await ds.getManifest('local', 'm2'))!
  const second = (await ds.getManifest('local', 'm2'))!
  assert.deepEqual(first, manifest('m2'))
  assert.deepEqual(second, manifest('m2'))
  assert.notEqual(first, second)
  first.documents.count = 999
  assert.equal((await ds.getManifest('local', 'm2'))!.documents.count, manifest('m2').documents.count)
  // The same key with other bytes: read and validated anew (a valid change shows, an invalid one is refused).
  await objects.put(layout.manifest('local', 'm2'), JSON.stringify({ ...manifest('m2'), maxTokens: 7 }))
  assert.equal((await ds.getManifest('local', 'm2'))!.maxTokens, 7)
  await objects.put(layout.manifest('local', 'm2'), JSON.stringify({ ...manifest('m2'), maxTokens: 'seven' }))
  await assert.rejects(ds.getManifest('local', 'm2'))
  await objects.put(layout.manifest('local', 'm2'), JSON.stringify({ ...manifest('m2'), extra: 'dropped' }))
  assert.deepEqual(await ds.getManifest('local', 'm2'), manifest('m2'))
})

test('delete: tombstone first, then every key; nothing can commit or reappear afterwards', async () => {
  const root = path.join(base, 'del')
  const inner = new FsObjectStore(root)
  const order: string[] = []
  // Record the order of writes and deletes to check the tombstone precedes the sweep.
  const objects: ObjectStore = {
    get: k => inner.get(k),
    getRange: (k, a, b) => inner.getRange(k, a, b),
    head: k => inner.head(k),
    list: p => inner.list(p),
    put: (k: string, body: Uint8Array | string, o?: PutOptions) => {
      order.push(`put ${k}`)
      return inner.put(k, body, o)
    },
    delete: k => {
      order.push(`delete ${k}`)
      return inner.delete(k)
    }
  }
  const ds = new DatasetStore(objects)
  await ds.putRecord(record('d1'))
  await ds.putRecord(record('keep'))
  const prefix = layout.datasetPrefix('local', 'd1')
  await objects.put(prefix + layout.byDocumentShard(0), new Uint8Array([1, 2, 3]))
  await objects.put(prefix + layout.documentsShard(0), new Uint8Array([4]))
  await ds.commitManifest('local', 'd1', manifest('d1'))
  order.length = 0

  const { deletedKeys } = await ds.deleteDataset('local', 'd1')
  assert.equal(deletedKeys, 4)
  assert.equal(order[0], `put ${layout.tombstone('local', 'd1')}`)
  assert.ok(order.slice(1).every(o => o.startsWith(`delete ${prefix}`)))
  assert.deepEqual(await inner.list(prefix), [])
  assert.deepEqual(await readdir(path.join(root, 'local/datasets')), ['keep']) // no empty folders left behind
  assert.equal(await ds.isTombstoned('local', 'd1'), true)
  assert.equal(await ds.isTombstoned('local', 'keep'), false)
  assert.equal(await ds.getRecord('local', 'd1'), null)
  assert.equal(await ds.getManifest('local', 'd1'), null)
  assert.deepEqual(
    (await ds.listRecords('local')).map(r => r.id),
    ['keep']
  )

  // A late redelivery of the job: its commit and record updates are refused.
  await assert.rejects(ds.commitManifest('local', 'd1', manifest('d1')), DatasetDeletedError)
  await assert.rejects(ds.putRecord({ ...record('d1'), status: 'running' }), DatasetDeletedError)
  // Even a manifest that raced past the check stays invisible.
  await inner.put(layout.manifest('local', 'd1'), JSON.stringify(manifest('d1')))
  assert.equal(await ds.getManifest('local', 'd1'), null)
})
