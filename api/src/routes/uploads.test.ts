/** @module Tests of POST /uploads: stored per tenant, size-limited (413), validated (415), and readable by POST /datasets only by its own tenant. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { uploadKeys, uploadProblem } from '@latentbase/shared/store/uploads'
import { createClient, type LatentbaseError } from '@latentbase/sdk'
import { createApp } from '../app.ts'
import { syntheticCatalog, syntheticTopics } from '../bench/synthetic-store.ts'

async function setup(uploadMaxBytes?: number) {
  const objects = new MemoryObjectStore()
  const keys = new ApiKeyStore(objects)
  const acme = (await keys.create('acme')).key
  const globex = (await keys.create('globex')).key
  const queue = new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-uploads-')), 'q'))
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue,
    encoders: syntheticCatalog('demo', 16, syntheticTopics(16, 2, 4)),
    mode: 'cloud',
    apiKeys: keys,
    tenantOf: () => {
      throw new Error('keys give the tenant')
    },
    ...(uploadMaxBytes ? { uploadMaxBytes } : {})
  })
  const clientOf = (apiKey: string) =>
    createClient({
      baseUrl: 'http://api.test',
      apiKey,
      fetch: async (url, init) => app.request(String(url), init as RequestInit)
    })
  return { objects, app, acme: clientOf(acme), globex: clientOf(globex), acmeKey: acme, queue }
}

const jsonl = '{"text":"a first document"}\n{"text":"a second one"}\n'

test('an upload is stored under its tenant and answered with an upload:// URL; POST /datasets takes it', async () => {
  const { objects, acme, queue } = await setup()
  const up = await acme.uploads.create(new TextEncoder().encode(jsonl), {
    filename: 'notes.jsonl',
    contentType: 'application/x-ndjson'
  })
  assert.match(up.id, /^up_[a-z0-9]{20}$/)
  assert.equal(up.url, `upload://${up.id}`)
  assert.equal(up.bytes, Buffer.byteLength(jsonl))
  assert.equal(up.filename, 'notes.jsonl')
  assert.equal(up.contentType, 'application/x-ndjson')
  assert.equal(new TextDecoder().decode((await objects.get(uploadKeys.data('acme', up.id)))!), jsonl)
  assert.equal(uploadKeys.data('acme', up.id), `acme/uploads/${up.id}`)

  const ds = await acme.datasets.create({ source: { url: up.url }, encoder: 'demo' })
  assert.equal(ds.status, 'queued')
  assert.equal(ds.name, 'notes.jsonl', 'the dataset is named after the uploaded file')
  assert.equal((ds.source as { url: string }).url, up.url)
  await queue.close()
})

test('another tenant cannot create a dataset from an upload, nor can anyone from a made-up one', async () => {
  const { acme, globex } = await setup()
  const up = await acme.uploads.create(jsonl, { filename: 'a.jsonl' })
  for (const [client, url] of [
    [globex, up.url],
    [acme, 'upload://up_aaaaaaaaaaaaaaaaaaaa']
  ] as const) {
    await assert.rejects(client.datasets.create({ source: { url }, encoder: 'demo' }), (err: LatentbaseError) => {
      assert.equal(err.status, 422)
      assert.equal(err.code, 'upload-not-found')
      return true
    })
  }
  await assert.rejects(
    acme.datasets.create({ source: { url: 'upload://../acme/uploads/x' }, encoder: 'demo' }),
    (err: LatentbaseError) => err.status === 422 && err.code === 'unsupported-url'
  )
})

test('over the limit: 413 problem+json, and nothing is stored', async () => {
  const { app, objects, acmeKey, acme } = await setup(1000)
  const res = await app.request('/uploads?filename=big.txt', {
    method: 'POST',
    headers: { authorization: `Bearer ${acmeKey}`, 'content-type': 'text/plain' },
    body: 'x'.repeat(1001)
  })
  assert.equal(res.status, 413)
  assert.match(res.headers.get('content-type') ?? '', /problem\+json/)
  const body = (await res.json()) as { code: string; detail: string }
  assert.equal(body.code, 'upload-too-large')
  assert.match(body.detail, /1000 bytes/)
  assert.deepEqual(await objects.list('acme/uploads/'), [])
  const ok = await acme.uploads.create('x'.repeat(1000), { filename: 'fits.txt' })
  assert.equal(ok.bytes, 1000)
})

test('bad uploads are refused with a reason: empty, binary, not UTF-8, unknown extension, bad file name, no key', async () => {
  const { app, acme } = await setup()
  const cases: Array<[Uint8Array | string, string, number, RegExp]> = [
    ['', 'empty.jsonl', 400, /empty/],
    [new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 1]), 'a.zip', 415, /not a supported format/],
    [new Uint8Array([0x68, 0x69, 0, 0x01]), 'data.jsonl', 415, /binary/],
    [new Uint8Array([0x68, 0xff, 0xfe, 0x69]), 'data.csv', 415, /UTF-8/]
  ]
  for (const [body, filename, status, detail] of cases) {
    await assert.rejects(acme.uploads.create(body, { filename }), (err: LatentbaseError) => {
      assert.equal(err.status, status, filename)
      assert.match(err.problem.detail ?? '', detail)
      return true
    })
  }
  await assert.rejects(
    acme.uploads.create(jsonl, { filename: '../etc/passwd' }),
    (err: LatentbaseError) => err.status === 400
  )
  const anonymous = await app.request('/uploads', { method: 'POST', body: jsonl })
  assert.equal(anonymous.status, 401)
  // Parquet and gzip pass on their magic bytes; the worker reads them.
  assert.equal(uploadProblem(new Uint8Array([0x50, 0x41, 0x52, 0x31, 0]), 'x.parquet'), null)
  assert.equal(uploadProblem(new Uint8Array([0x1f, 0x8b, 8, 0]), 'x.jsonl.gz'), null)
})

test('the upload route and its schemas are in /openapi.json', async () => {
  const { app } = await setup()
  const doc = (await (await app.request('/openapi.json')).json()) as {
    paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: Array<{ name: string }> }>>
  }
  const post = doc.paths['/uploads']?.post
  assert.ok(post, 'POST /uploads is documented')
  assert.ok(post.responses['201'] && post.responses['413'] && post.responses['415'])
  assert.ok(post.parameters?.some(p => p.name === 'filename'))
})
