/** @module The demo encoder, loaded for real and published, reads back through the store catalog exactly as the worker knows it. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { DEMO_ENCODER_DIR, catalogOf, loadEncoders } from './registry.ts'
import { publishEncoderCatalog } from './publish-catalog.ts'

test('publishEncoderCatalog: the API-side catalog equals the worker-side one (info, labels, label sources)', async () => {
  const encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  const objects = new MemoryObjectStore()
  const lines: string[] = []
  await publishEncoderCatalog(objects, encoders, l => lines.push(l))
  assert.match(lines[0], /published 1 encoder/)
  const local = catalogOf(encoders)
  const remote = await StoreEncoderCatalog.load(objects)
  assert.deepEqual(remote.list(), local.list())
  assert.deepEqual(await remote.labels('demo'), await local.labels('demo'))
  assert.deepEqual(await remote.labelSources('demo'), await local.labelSources('demo'))
  assert.deepEqual(await remote.labelDetection('demo'), await local.labelDetection('demo'))
  assert.ok(
    (await remote.labels('demo')).some(l => typeof l === 'string'),
    'the demo encoder has labels'
  )
})
