/**
 * @module The SDK over a connection that resets every reused socket (the keep-alive race, made certain), against the
 * real app on loopback: reads, polling and deletes are retried on a fresh connection; create is sent with an
 * Idempotency-Key, so its retry makes one dataset, not two.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '@latentbase/api/app'
import { createClient, isConnectionReset } from './index.ts'

let dir: string
let queue: EmbeddedQueue<JobMessage>
let server: Server
let base: string
const perSocket = new WeakMap<Socket, number>()
let resets = 0
let posts = 0

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-sdk-retry-'))
  const objects = new MemoryObjectStore()
  queue = new EmbeddedQueue<JobMessage>(join(dir, 'queue'))
  const info = {
    id: 'tiny',
    fingerprint: 'f'.repeat(64),
    hookName: 'blocks.0.hook_resid_post',
    dIn: 8,
    dSae: 32,
    architecture: 'standard',
    maxTokens: 64,
    labelled: 0
  }
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue,
    encoders: new StaticEncoderCatalog([{ info, labels: new Array(32).fill(null) }]),
    mode: 'local',
    tenantOf: () => 'local'
  })
  const listener = getRequestListener(app.fetch)
  server = createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1
    perSocket.set(req.socket, n)
    // Every second request on a connection: the server "closes it" just as the request arrives.
    if (n % 2 === 0) {
      resets++
      req.socket.resetAndDestroy()
      return
    }
    if (req.method === 'POST') posts++
    void listener(req, res)
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})

after(async () => {
  server.closeAllConnections()
  server.close()
  await queue.close()
  await rm(dir, { recursive: true, force: true })
})

test('without retries the SDK fails on the reset (the reproduction)', async () => {
  const client = createClient({ baseUrl: base, retry: false })
  await client.encoders.list()
  await new Promise(r => setTimeout(r, 20)) // the connection is back in the pool
  await assert.rejects(client.encoders.list(), e => isConnectionReset(e))
})

test('with the default retries, create, get, list, polling and delete all succeed through the resets', async () => {
  const client = createClient({ baseUrl: base, retry: { sleep: async () => {} } })
  const before = resets
  const created = await client.datasets.create({ name: 'r', encoder: 'tiny', documents: [{ text: 'hello' }] })
  await new Promise(r => setTimeout(r, 20))
  const again = await client.datasets.create({ name: 'r2', encoder: 'tiny', documents: [{ text: 'hello' }] })
  for (let i = 0; i < 6; i++) assert.equal((await client.datasets.get(created.id)).id, created.id)
  let polls = 0
  const controller = new AbortController()
  await assert.rejects(
    client.datasets.waitUntilReady(created.id, {
      intervalMs: 1,
      signal: controller.signal,
      onProgress: () => {
        if (++polls === 8) controller.abort()
      }
    }),
    e => (e as Error).name === 'AbortError'
  )
  assert.equal(polls, 8)
  const listed = await client.datasets.list()
  assert.deepEqual(listed.map(d => d.id).sort(), [created.id, again.id].sort(), 'each create made exactly one dataset')
  await client.datasets.delete(again.id)
  assert.ok(resets - before >= 8, `the network reset ${resets - before} requests`)
  assert.equal(posts, 2, 'each create reached the app once')
})
