/** @module Tests of Idempotency-Key on POST /datasets: replays, concurrent twins, a reused key with another body, and takeover of a crashed claim. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { createApp } from './app.ts'
import { idempotentDatasetId } from './idempotency.ts'
import { syntheticCatalog, syntheticTopics } from './bench/synthetic-store.ts'

const encoders = syntheticCatalog('syn', 64, syntheticTopics(64, 2, 4))
let objects: MemoryObjectStore
let queue: EmbeddedQueue<JobMessage>
let app: ReturnType<typeof createApp>

before(async () => {
  objects = new MemoryObjectStore()
  queue = new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-idem-')), 'q'))
  app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders,
    queue,
    mode: 'local',
    tenantOf: () => 'local'
  })
})

const post = (body: unknown, key?: string) =>
  app.request('/datasets', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key !== undefined ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body)
  })
const body = (text: string) => ({ encoder: 'syn', documents: [{ text }], webhook: { url: 'http://127.0.0.1:9/hook' } })
async function queued(): Promise<number> {
  const messages = await queue.receive({ max: 10, visibilitySeconds: 1, waitSeconds: 0 })
  return messages.length
}

test('a retried request gets the first answer and creates one dataset', async () => {
  const first = await post(body('hello'), 'key-1')
  const again = await post(body('hello'), 'key-1')
  assert.equal(first.status, 202)
  assert.equal(again.status, 202)
  assert.equal(again.headers.get('idempotent-replayed'), 'true')
  assert.equal(first.headers.get('idempotent-replayed'), null)
  const a = (await first.json()) as { id: string; webhookSecret: string }
  const b = (await again.json()) as { id: string; webhookSecret: string }
  assert.equal(b.id, a.id)
  assert.equal(b.webhookSecret, a.webhookSecret, 'the generated secret is part of the answer replayed')
  assert.equal(a.id, await idempotentDatasetId('local', 'key-1'))
  assert.equal(again.headers.get('location'), `/datasets/${a.id}`)
  assert.equal(await queued(), 1, 'one encode job')
})

test('concurrent twins: one dataset, one job, the same answer for all', async () => {
  const answers = await Promise.all(Array.from({ length: 5 }, () => post(body('twins'), 'key-2')))
  const bodies = await Promise.all(answers.map(r => r.json() as Promise<{ id: string; webhookSecret: string }>))
  assert.ok(answers.every(r => r.status === 202))
  assert.equal(new Set(bodies.map(b => b.id)).size, 1)
  assert.equal(new Set(bodies.map(b => b.webhookSecret)).size, 1)
  assert.equal(answers.filter(r => r.headers.get('idempotent-replayed') === 'true').length, 4)
  assert.equal(await queued(), 1)
})

test('the same key with another body is refused; a malformed key too; no key creates a new dataset each time', async () => {
  await post(body('one'), 'key-3')
  const reused = await post(body('two'), 'key-3')
  assert.equal(reused.status, 422)
  assert.equal(((await reused.json()) as { code: string }).code, 'idempotency-key-reused')
  const bad = await post(body('x'), 'has space')
  assert.equal(bad.status, 400)
  const [p, q] = [await post(body('free')), await post(body('free'))]
  assert.notEqual(((await p.json()) as { id: string }).id, ((await q.json()) as { id: string }).id)
  await queued()
})

test('a claim left by a crashed request is taken over and creates the dataset under the same id', async () => {
  const key = 'key-4'
  const claimPath = `local/idempotency/${await sha256Hex(key)}.json`
  const first = await post(body('crash'), key)
  const created = (await first.json()) as { id: string }
  // Rewind to a crash: the claim is old and has no answer, and the dataset record never got written.
  const claim = JSON.parse(new TextDecoder().decode((await objects.get(claimPath))!))
  await objects.put(claimPath, JSON.stringify({ requestHash: claim.requestHash, claimedAt: Date.now() - 60_000 }))
  await objects.delete(`local/datasets/${created.id}/dataset.json`)
  const retried = await post(body('crash'), key)
  assert.equal(retried.status, 202)
  assert.equal(((await retried.json()) as { id: string }).id, created.id, 'the same dataset id')
  assert.ok(await objects.get(`local/datasets/${created.id}/dataset.json`), 'the dataset exists again')
})
