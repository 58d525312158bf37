/** @module The store-backed encoder catalog: what the GPU worker publishes is what an API without models serves. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '../store/memory-store.ts'
import type { EncoderInfo } from '../contract/encoder.ts'
import { ENCODER_CATALOG_KEY, StoreEncoderCatalog, encoderLabelsKey, publishEncoderCatalog } from './store-catalog.ts'

const info = (id: string, fingerprint: string, dSae = 4): EncoderInfo => ({
  id,
  fingerprint,
  hookName: 'blocks.1.hook_resid_post',
  dIn: 8,
  dSae,
  architecture: 'relu',
  maxTokens: 64,
  labelled: 2
})

test('publish then read: encoders, labels and label sources round-trip; no catalog means no encoders', async () => {
  const objects = new MemoryObjectStore()
  const empty = await StoreEncoderCatalog.load(objects)
  assert.deepEqual(empty.list(), [])
  await assert.rejects(empty.labels('demo'), /unknown encoder "demo"/)

  await publishEncoderCatalog(objects, [
    {
      info: info('demo', 'f1'),
      labels: ['cats', null, 'dogs', null],
      labelSources: ['offline', null, 'neuronpedia', null]
    }
  ])
  const catalog = await StoreEncoderCatalog.load(objects)
  assert.deepEqual(
    catalog.list().map(e => e.id),
    ['demo']
  )
  assert.equal(catalog.get('demo')?.fingerprint, 'f1')
  assert.equal(catalog.get('nope'), undefined)
  assert.deepEqual(await catalog.labels('demo'), ['cats', null, 'dogs', null])
  assert.deepEqual(await catalog.labelSources('demo'), ['offline', null, 'neuronpedia', null])
})

test('workers with different encoders publish side by side; republishing an id replaces it and its labels', async () => {
  const objects = new MemoryObjectStore()
  await publishEncoderCatalog(objects, [{ info: info('a', 'fa'), labels: ['x', null, null, null] }])
  await publishEncoderCatalog(objects, [{ info: info('b', 'fb'), labels: ['y', null, null, null] }])
  let catalog = await StoreEncoderCatalog.load(objects)
  assert.deepEqual(
    catalog.list().map(e => e.id),
    ['a', 'b']
  )
  await publishEncoderCatalog(objects, [{ info: info('a', 'fa2'), labels: ['x2', null, null, null] }])
  catalog = await StoreEncoderCatalog.load(objects)
  assert.equal(catalog.get('a')?.fingerprint, 'fa2')
  assert.deepEqual(await catalog.labels('a'), ['x2', null, null, null])
  assert.deepEqual(await catalog.labelSources('b'), [null, null, null, null])
})

test('refresh honours the TTL, and labels made for another fingerprint are refused', async () => {
  const objects = new MemoryObjectStore()
  let now = 0
  await publishEncoderCatalog(objects, [{ info: info('a', 'f1'), labels: ['old', null, null, null] }])
  const catalog = await StoreEncoderCatalog.load(objects, { ttlMs: 1000, now: () => now })
  assert.deepEqual(await catalog.labels('a'), ['old', null, null, null])
  await publishEncoderCatalog(objects, [{ info: info('a', 'f2'), labels: ['new', null, null, null] }])
  now = 500
  await catalog.refresh()
  assert.equal(catalog.get('a')?.fingerprint, 'f1', 'within the TTL the snapshot is kept')
  now = 1500
  await catalog.refresh()
  assert.equal(catalog.get('a')?.fingerprint, 'f2')
  assert.deepEqual(await catalog.labels('a'), ['new', null, null, null], 'labels are cached per fingerprint')

  // Labels overwritten by a publisher of another build of the encoder while the catalog still names this one.
  await objects.put(encoderLabelsKey('a'), JSON.stringify({ fingerprint: 'other', labels: ['?', null, null, null] }))
  const fresh = await StoreEncoderCatalog.load(objects)
  await assert.rejects(fresh.labels('a'), /fingerprint other.*republish/)
  await objects.put(ENCODER_CATALOG_KEY, '{not json')
  await assert.rejects(StoreEncoderCatalog.load(objects), /not JSON/)
})

test('labels re-imported under the same fingerprint (labels do not change latent values) are seen after a refresh', async () => {
  const objects = new MemoryObjectStore()
  let now = 0
  await publishEncoderCatalog(objects, [{ info: info('a', 'f1'), labels: ['old', null, null, null] }])
  const catalog = await StoreEncoderCatalog.load(objects, { ttlMs: 1000, now: () => now })
  const before = catalog.get('a')!.labelsVersion
  assert.match(before ?? '', /^[0-9a-f]{32}$/, 'published entries carry a labels version')
  assert.deepEqual(await catalog.labels('a'), ['old', null, null, null])
  await publishEncoderCatalog(objects, [
    { info: info('a', 'f1'), labels: ['old', null, null, null], labelSources: ['neuronpedia', null, null, null] }
  ])
  now = 1500
  await catalog.refresh()
  assert.notEqual(catalog.get('a')!.labelsVersion, before, 'a new source alone is a new version')
  await publishEncoderCatalog(objects, [{ info: info('a', 'f1'), labels: ['new', null, 'more', null] }])
  now = 3000
  await catalog.refresh()
  assert.equal(catalog.get('a')!.fingerprint, 'f1')
  assert.deepEqual(await catalog.labels('a'), ['new', null, 'more', null])
  assert.deepEqual(await catalog.labelSources('a'), [null, null, null, null])
  // The same labels published again keep their version.
  const version = catalog.get('a')!.labelsVersion
  await publishEncoderCatalog(objects, [{ info: info('a', 'f1'), labels: ['new', null, 'more', null] }])
  await catalog.refresh(true)
  assert.equal(catalog.get('a')!.labelsVersion, version)
})

test('a snapshot older than the labels file serves the newer labels but does not keep them under its version', async () => {
  const objects = new MemoryObjectStore()
  await publishEncoderCatalog(objects, [{ info: info('a', 'f1'), labels: ['old', null, null, null] }])
  const catalog = await StoreEncoderCatalog.load(objects, { ttlMs: 60_000 })
  // A publisher wrote the labels file and has not written the catalog yet.
  await objects.put(
    encoderLabelsKey('a'),
    JSON.stringify({ fingerprint: 'f1', labelsVersion: 'next', labels: ['new', null, null, null] })
  )
  assert.deepEqual(await catalog.labels('a'), ['new', null, null, null])
  await objects.put(
    encoderLabelsKey('a'),
    JSON.stringify({ fingerprint: 'f1', labelsVersion: 'after', labels: ['newer', null, null, null] })
  )
  assert.deepEqual(await catalog.labels('a'), ['newer', null, null, null], 'read again, not kept')
})
