/**
 * @module Datasets that grow, end to end on the local deployment (API + queue + worker + demo encoder, real store):
 * an append becomes version 2 with stable rows and merged statistics, analyses read the latest version or a pinned
 * one (ds@1), a cached answer's 304 turns into a 200 after the append, a failed append leaves the previous version
 * whole, Idempotency-Key appends once, a watch sends a signed dataset.drift webhook naming the latents that moved
 * (or none), and a missing or changed encoder is a 409.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppendFailedError, createClient, verifyWebhook, type WebhookEvent } from '@latentbase/sdk'
import { DEMO_ENCODER_DIR, catalogOf, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { cscKey } from '@latentbase/shared/store/latent-shards/csc'
import type { ShardFile } from '@latentbase/shared/contract/manifest'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { DuckDBInstance } from '@duckdb/node-api'
import { startLocal, type LocalServer } from '../local-server.ts'
import { createApp } from '../app.ts'

const friendly = [
  'the whale',
  'my garden',
  'the quarterly report',
  'the lazy dog',
  'sea shells',
  'your order',
  'the meeting',
  'the ship',
  'the crew',
  'the list'
].map((s, i) => ({
  id: `f${i}`,
  metadata: { tone: 'friendly', batch: i % 3 },
  text: `Dear team, a short note about ${s}. I am writing to inform you that the matter has been reviewed. Kind regards.`
}))
const shouting = Array.from({ length: 10 }, (_, i) => ({
  id: `s${i}`,
  metadata: { tone: 'shouting', batch: i % 3 },
  text: `FREE PRIZE!!! Click here now to claim your ${i + 2} million dollars!!! Act now, limited offer $$$`
}))

let dataDir: string
let encoders: Map<string, LoadedEncoder>
let server: LocalServer
let receiver: Server
let hookUrl: string
const received: Array<{ headers: Record<string, string>; body: string }> = []

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'latentbase-versions-'))
  encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  server = await startLocal({ dataDir, port: 0, encoders, log: () => {}, encodeOptions: { partDocuments: 4 } })
  receiver = createServer((req, res) => {
    let body = ''
    req.on('data', c => {
      body += c
    })
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(ok => receiver.listen(0, '127.0.0.1', ok))
  hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`
})

after(async () => {
  receiver?.close()
  await server?.close()
  await rm(dataDir, { recursive: true, force: true })
})

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, {
    method,
    headers: { connection: 'close', ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

const datasetWhen = (id: string, ok: (d: any) => boolean) =>
  until(`dataset ${id}`, async () => {
    const d = (await call('GET', `/datasets/${id}`)).body
    return ok(d) ? d : undefined
  })

async function events(secret: string, type: string, count: number): Promise<WebhookEvent[]> {
  return until(
    `${count} ${type} event(s)`,
    async () => {
      const all = await Promise.all(received.map(r => verifyWebhook(secret, r.headers, r.body)))
      const of = all.filter(e => e.type === type)
      return of.length >= count ? of : undefined
    },
    60_000
  )
}

test('append: versions, stable rows, pinned reads, ETag after append, failure isolation, idempotency and drift webhooks', async () => {
  const created = await call('POST', '/datasets', {
    name: 'growing',
    documents: friendly,
    webhook: { url: hookUrl },
    watch: { against: 'previous', minDifference: 0.3, maxQValue: 0.05 }
  })
  assert.equal(created.status, 202)
  const id: string = created.body.id
  const secret: string = created.body.webhookSecret
  assert.deepEqual(created.body.watch, { against: 'previous', minDifference: 0.3, maxQValue: 0.05 })
  const v1 = await datasetWhen(id, d => d.status === 'ready')
  assert.deepEqual(
    [v1.version, v1.versions.map((v: any) => [v.version, v.documents.start, v.documents.count])],
    [1, [[1, 0, 10]]]
  )

  const diffPath = `/diff?a=${id}&b=${id}&aWhere=${encodeURIComponent('tokens >= 0')}&bWhere=${encodeURIComponent('tokens >= 1')}&limit=5`
  const first = await call('GET', diffPath)
  assert.equal(first.status, 200, JSON.stringify(first.body))
  const etag = first.headers.get('etag')!
  assert.equal((await call('GET', diffPath, undefined, { 'if-none-match': etag })).status, 304)

  // Version 2, with an Idempotency-Key: the retry replays the first answer and appends once.
  const key = { 'idempotency-key': `append-${id}` }
  const appended = await call('POST', `/datasets/${id}/documents`, { documents: shouting }, key)
  assert.equal(appended.status, 202, JSON.stringify(appended.body))
  assert.equal(appended.headers.get('location'), `/datasets/${id}`)
  assert.equal(appended.body.append.version, 2)
  assert.equal(appended.body.status, 'ready', 'the dataset stays ready on version 1 meanwhile')
  const again = await call('POST', `/datasets/${id}/documents`, { documents: shouting }, key)
  assert.equal(again.status, 202)
  assert.equal(again.headers.get('idempotent-replayed'), 'true')
  assert.deepEqual(again.body, appended.body)
  const busy = await call('POST', `/datasets/${id}/documents`, { documents: shouting })
  if (busy.status !== 202) assert.equal(busy.body.code, 'append-in-progress')

  const v2 = await datasetWhen(id, d => d.version === 2)
  assert.equal(v2.append, undefined)
  assert.deepEqual(
    v2.versions.map((v: any) => [v.version, v.documents.start, v.documents.count]),
    [
      [1, 0, 10],
      [2, 10, 10]
    ]
  )
  assert.equal(v2.stats.documents, 20)
  // Rows are stable: row 0 is still the first friendly note; the batch continues at row 10.
  assert.equal((await call('GET', `/datasets/${id}/documents/0`)).body.text, friendly[0].text)
  assert.equal((await call('GET', `/datasets/${id}/documents/10`)).body.text, shouting[0].text)

  // Statistics merged per version equal those of the same documents encoded at once: the diff finds no difference at
  // all, and the latent pages (frequencies, quantiles from the merged histograms, top examples) are the same.
  const whole = (await call('POST', '/datasets', { documents: [...friendly, ...shouting] })).body.id as string
  await datasetWhen(whole, d => d.status === 'ready')
  const same = await call('GET', `/diff?a=${id}&b=${whole}&direction=both&limit=5000`)
  assert.equal(same.status, 200, JSON.stringify(same.body))
  assert.ok(same.body.latents.length > 20)
  for (const l of same.body.latents) assert.deepEqual([l.latent, l.countA, l.difference], [l.latent, l.countB, 0])
  const top = (await call('GET', `/diff?a=${id}@2&b=${id}@1&limit=1`)).body.latents[0].latent as number
  // Slices of two versions of one dataset are counted apart (each over its own version's rows): a slice holding every
  // document counts what the whole version does.
  const counted = (path: string) =>
    call('GET', path).then(r => {
      assert.equal(r.status, 200, JSON.stringify(r.body))
      return r.body.latents.map((l: any) => [l.latent, l.countA, l.countB])
    })
  const all = encodeURIComponent('tokens >= 0')
  assert.deepEqual(
    await counted(`/diff?a=${id}@1&aWhere=${all}&b=${id}@2&bWhere=${all}&direction=both&limit=5000`),
    await counted(`/diff?a=${id}@1&b=${id}@2&direction=both&limit=5000`)
  )
  // The facets are merged per version too: slices on one metadata key (which they answer) count what the same slices'
  // rows do (a token condition makes the second pair read rows), in each version and across them.
  const slicePair = (a: string, b: string, extra = '') =>
    `aWhere=${encodeURIComponent(a + extra)}&bWhere=${encodeURIComponent(b + extra)}&direction=both&limit=5000`
  for (const [a, b] of [
    ['metadata.tone = "shouting"', 'metadata.tone != "shouting"'],
    ['metadata.batch = 1', 'metadata.batch in (0, 2)']
  ]) {
    for (const [va, vb] of [
      ['', ''],
      ['@1', '@2']
    ]) {
      const byFacets = await counted(`/diff?a=${id}${va}&b=${id}${vb}&${slicePair(a, b)}`)
      assert.ok(byFacets.length > 5)
      assert.deepEqual(
        byFacets,
        await counted(`/diff?a=${id}${va}&b=${id}${vb}&${slicePair(a, b, ' and tokens >= 0')}`)
      )
    }
  }
  // The facets route answers per version: version 1's documents, then both batches'.
  const tones = async (ref: string) => {
    const r = await call('GET', `/datasets/${ref}/facets`)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const tone = r.body.fields.find((f: any) => f.field === 'metadata.tone')
    return [r.body.documents, tone.values.map((v: any) => [v.value, v.documents])]
  }
  assert.deepEqual(await tones(`${id}@1`), [10, [['friendly', 10]]])
  assert.deepEqual(await tones(id), [
    20,
    [
      ['friendly', 10],
      ['shouting', 10]
    ]
  ])
  const page = (ds: string) =>
    call('GET', `/latents/${top}?dataset=${ds}`).then(r => {
      assert.equal(r.status, 200, JSON.stringify(r.body))
      const { dataset: _d, ...rest } = r.body
      return rest
    })
  assert.deepEqual(await page(id), await page(whole))

  // The store stays readable by DuckDB: version 1's files and version 2's, rows continued.
  const folder = join(dataDir, 'store', 'local', 'datasets', id)
  const con = await (await DuckDBInstance.create(':memory:', { threads: '1' })).connect()
  const [docs] = (
    await con.runAndReadAll(
      `SELECT count(*) AS n, min("row") AS first, max("row") AS last FROM read_parquet('${folder}/**/documents/*.parquet')`
    )
  ).getRowObjectsJson()
  assert.deepEqual([Number(docs.n), Number(docs.first), Number(docs.last)], [20, 0, 19])
  // docs/store.md's recipe (an uncommitted batch's rows start at the manifest's count: the filter leaves it out).
  const [committed] = (
    await con.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${folder}/**/documents/*.parquet')
WHERE "row" < (SELECT documents.count FROM read_json('${folder}/manifest.json'))`)
  ).getRowObjectsJson()
  assert.equal(Number(committed.n), 20)
  con.closeSync()

  // The cached answer is not served stale: the old ETag now gets a 200 with a new one.
  const fresh = await call('GET', diffPath, undefined, { 'if-none-match': etag })
  assert.equal(fresh.status, 200)
  assert.notEqual(fresh.headers.get('etag'), etag)
  assert.equal(fresh.body.a.documents, 20)

  // Any version on request: ds@2 (the whole dataset) against ds@1 (as created).
  const pinned = await call('GET', `/diff?a=${id}@2&b=${id}@1&limit=3`)
  assert.equal(pinned.status, 200, JSON.stringify(pinned.body))
  assert.deepEqual(
    [pinned.body.a.id, pinned.body.a.documents, pinned.body.b[0].id, pinned.body.b[0].documents],
    [`${id}@2`, 20, `${id}@1`, 10]
  )
  // Every analysis takes the pinned reference and names it in its answer.
  for (const [path, body] of [
    [`/latents/${top}?dataset=${id}@1`, undefined],
    [`/correlations?dataset=${id}@1&minCount=1`, undefined],
    [`/search?dataset=${id}@1&q=note&method=bm25`, undefined],
    ['/clusters', { dataset: `${id}@1`, k: 2 }]
  ] as const) {
    const r = await call(body ? 'POST' : 'GET', path, body)
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.dataset, `${id}@1`, path)
  }
  const latestSearch = await call('GET', `/search?dataset=${id}&q=prize&limit=3`)
  assert.equal(latestSearch.status, 200, JSON.stringify(latestSearch.body))
  // Both versions' by-latent shards have their sidecars where the manifest's keys (the second under its folder) say.
  const byLatent = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')).latents.byLatent as ShardFile[]
  assert.ok(
    byLatent.some(f => !f.key.startsWith('latents/')),
    'a file of the second version, under its folder'
  )
  for (const f of byLatent) assert.equal((await stat(join(folder, cscKey(f.key)))).size, f.cscBytes, f.key)
  const missing = await call('GET', `/diff?a=${id}@7&b=${id}`)
  assert.equal(missing.status, 404)
  assert.equal(missing.body.code, 'version-not-found')
  assert.match(missing.body.detail, /versions are 1-2/)

  // The drift webhook: signed; the shouting batch moved latents against the friendly one, each with an interval and a q-value.
  const [drift] = await events(secret, 'dataset.drift', 1)
  const report = (drift.data as any).drift
  assert.equal(report.version, 2)
  assert.equal(report.baseline, 1)
  assert.deepEqual(report.documents, { version: 10, baseline: 10 })
  assert.ok(report.moved.length > 0, 'latents moved')
  for (const l of report.moved) {
    assert.ok(Math.abs(l.difference) >= 0.3 && l.qValue <= 0.05)
    assert.ok(l.ci95[0] <= l.difference && l.difference <= l.ci95[1])
  }
  assert.equal((await events(secret, 'dataset.version', 1))[0].data.id, id)

  // A batch that fails (nothing to encode) leaves version 2 whole and visible.
  const bad = await call('POST', `/datasets/${id}/documents`, { documents: [{ text: '' }] })
  assert.equal(bad.status, 202)
  const failed = await datasetWhen(id, d => d.append?.status === 'failed')
  assert.equal(failed.append.error.code, 'no-documents')
  assert.equal(failed.version, 2)
  assert.equal(failed.status, 'ready')
  assert.equal((await call('GET', diffPath)).body.a.documents, 20)

  // The next batch takes version 3; more of the same shouting: nothing moved against version 2.
  const third = await call('POST', `/datasets/${id}/documents`, {
    documents: shouting.map(d => ({ ...d, id: `${d.id}-again` }))
  })
  assert.equal(third.body.append.version, 3)
  const v3 = await datasetWhen(id, d => d.version === 3)
  assert.deepEqual(
    v3.versions.map((v: any) => [v.version, v.documents.start, v.documents.count]),
    [
      [1, 0, 10],
      [2, 10, 10],
      [3, 20, 10]
    ]
  )
  const drifts = await events(secret, 'dataset.drift', 2)
  const none = (drifts.find(e => (e.data as any).drift.version === 3)!.data as any).drift
  assert.equal(none.baseline, 2)
  assert.deepEqual(none.moved, [])
  assert.equal((await call('GET', `/diff?a=${id}@3&b=${id}@2`)).body.a.documents, 30)
  // PATCH removes the watch.
  const unwatched = await call('PATCH', `/datasets/${id}`, { watch: null })
  assert.equal(unwatched.status, 200)
  assert.equal(unwatched.body.watch, undefined)
})

test('an append is refused with a 409 saying why: dataset not ready, encoder missing, encoder changed', async () => {
  const created = await call('POST', '/datasets', { documents: friendly.slice(0, 3) })
  const id: string = created.body.id
  const early = await call('POST', `/datasets/${id}/documents`, { documents: shouting.slice(0, 1) })
  if (early.status === 409) assert.match(early.body.code, /dataset-not-ready/)
  await datasetWhen(id, d => d.status === 'ready')
  if (early.status === 202) await datasetWhen(id, d => d.version === 2)

  // The same store served by an API whose catalog lacks the encoder, or holds a changed one.
  const objects = new FsObjectStore(join(dataDir, 'store'))
  const queueDir = await mkdtemp(join(tmpdir(), 'latentbase-versions-q-'))
  const appWith = (catalog: StaticEncoderCatalog) =>
    createApp({
      objects,
      datasets: new DatasetStore(objects),
      encoders: catalog,
      mode: 'local',
      tenantOf: () => 'local',
      queue: new EmbeddedQueue<JobMessage>(join(queueDir, 'queue'))
    })
  const post = async (app: ReturnType<typeof appWith>) => {
    const res = await app.request(`/datasets/${id}/documents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ documents: shouting.slice(0, 2) })
    })
    assert.equal(res.headers.get('content-type'), 'application/problem+json')
    return { status: res.status, body: (await res.json()) as { code: string; detail: string } }
  }
  const demo = encoders.get('demo')!
  const gone = await post(appWith(new StaticEncoderCatalog([])))
  assert.deepEqual([gone.status, gone.body.code], [409, 'encoder-missing'])
  assert.match(gone.body.detail, /same encoder/)
  const changed = await post(
    appWith(new StaticEncoderCatalog([{ info: { ...demo.info, fingerprint: 'another' }, labels: demo.labels }]))
  )
  assert.deepEqual([changed.status, changed.body.code], [409, 'encoder-mismatch'])
  // PATCH renames (the version routes are served by any API over the store).
  const same = await appWith(catalogOf(encoders)).request(`/datasets/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'renamed' })
  })
  const renamed = (await same.json()) as { name: string }
  assert.equal(renamed.name, 'renamed', JSON.stringify(renamed))
  const unknown = await call('POST', '/datasets/ds_nope/documents', { documents: shouting.slice(0, 1) })
  assert.equal(unknown.status, 404)
  const invalid = await call('POST', `/datasets/${id}/documents`, { documents: [] })
  assert.equal(invalid.status, 400)
  await rm(queueDir, { recursive: true, force: true })

  // The SDK: set a watch (defaults filled in), append, and wait for the version (a failed batch throws, saying why).
  const client = createClient({ baseUrl: server.url })
  const watched = await client.datasets.update(id, { watch: { against: 1, minDifference: 0.1 } })
  assert.deepEqual(watched.watch, { against: 1, minDifference: 0.1, maxQValue: 0.05 })
  const pending = await client.datasets.append(id, { documents: [{ text: '' }] })
  await assert.rejects(
    client.datasets.waitForVersion(id, pending.append!.version, { timeoutMs: 120_000, intervalMs: 100 }),
    (e: AppendFailedError) => e instanceof AppendFailedError && e.dataset.append?.error?.code === 'no-documents'
  )
})

test("a batch pools the dataset's chat roles: left out (inline or by URL), it inherits them; others are a 422 before anything is staged", async () => {
  const chat = (i: number) => ({
    id: `c${i}`,
    messages: [
      { role: 'user', content: `Please tell me about the harbour lighthouse number ${i}.` },
      { role: 'assistant', content: 'Certainly! Quarterly revenue grew by twelve percent in Europe.' }
    ]
  })
  const created = await call('POST', '/datasets', {
    documents: [0, 1, 2].map(chat),
    poolRoles: ['user']
  })
  assert.equal(created.status, 202, JSON.stringify(created.body))
  const id: string = created.body.id
  await datasetWhen(id, d => d.status === 'ready')
  const mismatch = await call('POST', `/datasets/${id}/documents`, { documents: [chat(3)], poolRoles: ['assistant'] })
  assert.deepEqual([mismatch.status, mismatch.body.code], [422, 'pool-roles-mismatch'])
  assert.match(mismatch.body.detail, /pools the turns of user; this batch would pool assistant.*leave "poolRoles" out/)
  // The same for a URL source naming other roles, naming the source's field.
  const byUrl = await call('POST', `/datasets/${id}/documents`, {
    source: { url: 'file:///no/such/chats.jsonl', poolRoles: ['assistant'] }
  })
  assert.deepEqual([byUrl.status, byUrl.body.code], [422, 'pool-roles-mismatch'])
  assert.match(byUrl.body.detail, /"source.poolRoles"/)
  assert.equal((await call('GET', `/datasets/${id}`)).body.append, undefined, 'nothing was staged')
  // Left out, the batch pools the user's turns as the dataset does: where a latent fires in the new row is in them.
  const appended = await call('POST', `/datasets/${id}/documents`, { documents: [chat(3)] })
  assert.equal(appended.status, 202, JSON.stringify(appended.body))
  await datasetWhen(id, d => d.version === 2)
  const doc = (await call('GET', `/datasets/${id}/documents/3`)).body as {
    latents: Array<{ latent: number; value: number; position: number }>
  }
  const shown = (await call('GET', `/datasets/${id}/documents/3/activations?latents=${doc.latents[0].latent}`))
    .body as {
    tokens: string[]
    pooled: number[]
    latents: Array<{ max: number; position: number }>
  }
  // The stored encoding of the batch peaks where the dataset's roles pool, at the same value.
  assert.equal(shown.pooled[doc.latents[0].position], 1)
  assert.equal(shown.latents[0].position, doc.latents[0].position)
  assert.ok(Math.abs(shown.latents[0].max - doc.latents[0].value) < 1e-3)
  const pooledText = shown.tokens.filter((_, t) => shown.pooled[t]).join('')
  assert.match(pooledText, /lighthouse/)
  assert.doesNotMatch(pooledText, /revenue/)
  // By URL without roles: the user's turns again (a source's default would have been the assistant's).
  const file = join(dataDir, 'more-chats.jsonl')
  await writeFile(file, `${JSON.stringify({ id: 'c4', messages: chat(4).messages })}\n`)
  const byFile = await call('POST', `/datasets/${id}/documents`, {
    source: { url: `file://${file}`, messagesField: 'messages' }
  })
  assert.equal(byFile.status, 202, JSON.stringify(byFile.body))
  await datasetWhen(id, d => d.version === 3)
  const row4 = (await call('GET', `/datasets/${id}/documents/4`)).body as { latents: Array<{ position: number }> }
  const at4 = (await call('GET', `/datasets/${id}/documents/4/activations?latents=0`)).body as { pooled: number[] }
  assert.ok(row4.latents.length > 0 && row4.latents.every(l => at4.pooled[l.position] === 1), 'peaks in the user turn')
})
