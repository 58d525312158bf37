/**
 * @module GET /datasets/{id}/documents/{row}/activations and GET /datasets/{id}/activations?text= on the real local
 * deployment (demo encoder): each latent peaks at the value and token the document page reports, and a document's text
 * has the document's latents; bad latents, texts and rows are 400 / 404; without the encoder, a 501.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DocumentActivations, DocumentView, TextActivations } from '@latentbase/shared/contract/dataset'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { catalogOf, DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import { startDemoServer, type DemoServer } from '../testing/demo-server.ts'
import { createApp } from '../app.ts'

let demo: DemoServer
before(async () => {
  demo = await startDemoServer(12)
})
after(async () => {
  await demo?.close()
})

const get = async (path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${demo.server.url}${path}`, { headers })
  return { res, body: res.status === 304 ? {} : ((await res.json()) as Record<string, unknown>) }
}

test("each latent peaks where and as high as the document page says; the tokens spell the document's text", async () => {
  const row = 3
  const page = DocumentView.parse((await get(`/datasets/${demo.spam}/documents/${row}?peaks=none`)).body)
  const asked = page.latents.slice(0, 6)
  const { res, body } = await get(
    `/datasets/${demo.spam}/documents/${row}/activations?latents=${asked.map(l => l.latent).join(',')}`
  )
  assert.equal(res.status, 200, JSON.stringify(body))
  const r = DocumentActivations.parse(body)
  assert.equal(r.id, page.id)
  assert.equal(r.tokens.length, page.tokenCount)
  assert.equal(r.pooled.length, r.tokens.length)
  const words = page.text.split(/\s+/).filter(w => /^[a-z]{4,}$/i.test(w))
  const spelled = r.tokens.join('')
  assert.ok(
    words.slice(0, 10).every(w => spelled.includes(w)),
    `${words.slice(0, 10)} in ${spelled.slice(0, 300)}`
  )
  assert.deepEqual(
    r.latents.map(l => l.latent),
    asked.map(l => l.latent)
  )
  for (const [i, l] of r.latents.entries()) {
    assert.equal(l.activations.length, r.tokens.length)
    assert.equal(l.position, asked[i].position, `latent ${l.latent}`)
    assert.ok(Math.abs(l.max - asked[i].value) <= 1e-3 * Math.max(1, asked[i].value), `${l.max} vs ${asked[i].value}`)
    assert.equal(l.label, asked[i].label)
  }
  // The same question is the same answer: a strong ETag, and 304 when the client has it.
  const tag = res.headers.get('etag')
  assert.ok(tag)
  const again = await get(`/datasets/${demo.spam}/documents/${row}/activations?latents=${asked[0].latent}`, {
    'if-none-match': tag
  })
  assert.equal(again.res.status, 200, 'another question is another answer')
  const same = await get(
    `/datasets/${demo.spam}/documents/${row}/activations?latents=${asked.map(l => l.latent).join(',')}`,
    { 'if-none-match': tag }
  )
  assert.equal(same.res.status, 304)
})

test("a text's strongest latents: a document's own text has the document's latents, with the dataset's frequencies", async () => {
  const row = 5
  const page = DocumentView.parse((await get(`/datasets/${demo.spam}/documents/${row}?peaks=none`)).body)
  const text = demo.documents.spam[row].text
  const { res, body } = await get(`/datasets/${demo.spam}/activations?text=${encodeURIComponent(text)}&top=10`)
  assert.equal(res.status, 200, JSON.stringify(body))
  const r = TextActivations.parse(body)
  assert.equal(r.text, text.trim())
  assert.equal(r.present, page.latents.length)
  assert.equal(r.tokens.length, page.tokenCount)
  // The page's order breaks ties by position in the shard; compare as (value, latent) sets of the top 10.
  const top = page.latents.slice(0, 10)
  assert.deepEqual(
    r.latents.map(l => l.latent).sort((a, b) => a - b),
    top.map(l => l.latent).sort((a, b) => a - b)
  )
  for (const l of r.latents) {
    const stored = page.latents.find(x => x.latent === l.latent)!
    assert.ok(Math.abs(l.max - stored.value) <= 1e-3 * Math.max(1, stored.value))
    assert.equal(l.position, stored.position)
    assert.equal(l.frequency, stored.frequency)
  }
  // Distinctive first: activation x smoothed idf, so the latents in every document sink.
  const docs = demo.documents.spam.length
  const distinct = TextActivations.parse(
    (await get(`/datasets/${demo.spam}/activations?text=${encodeURIComponent(text)}&top=10&order=distinctive`)).body
  )
  const score = (l: { max: number; frequency: number }) =>
    l.max * Math.log((docs + 1) / (Math.round(l.frequency * docs) + 1))
  for (let i = 1; i < distinct.latents.length; i++)
    assert.ok(score(distinct.latents[i - 1]) >= score(distinct.latents[i]) - 1e-6, `rank ${i}`)
  assert.notDeepEqual(
    distinct.latents.map(l => l.latent),
    r.latents.map(l => l.latent)
  )
  const everywhere = page.latents.filter(l => l.frequency === 1).length
  assert.ok(
    everywhere === 0 ||
      distinct.latents.filter(l => l.frequency === 1).length <= r.latents.filter(l => l.frequency === 1).length,
    'fewer latents of every document'
  )
  // A latent without a label says what it peaks on in the dataset's top examples.
  for (const l of [...r.latents, ...distinct.latents])
    if (!l.label) assert.ok(l.peak !== undefined, `latent ${l.latent}`)
  // A chat: the turns the dataset pools (the assistant's) are pooled, the user's are read but not pooled.
  const messages = JSON.stringify([
    { role: 'user', content: 'hello there, old friend' },
    { role: 'assistant', content: 'Click here to claim your free prize' }
  ])
  const chat = TextActivations.parse(
    (await get(`/datasets/${demo.spam}/activations?format=chat&text=${encodeURIComponent(messages)}`)).body
  )
  const pooledText = chat.tokens.filter((_, t) => chat.pooled[t]).join('')
  assert.match(pooledText, /Click here/)
  assert.doesNotMatch(pooledText, /friend/)
  assert.match(chat.tokens.join(''), /friend/)
  const chosen = TextActivations.parse(
    (await get(`/datasets/${demo.spam}/activations?text=${encodeURIComponent('free money now')}&latents=3,1`)).body
  )
  assert.deepEqual(
    chosen.latents.map(l => l.latent),
    [3, 1]
  )
})

test('bad latents are a 400 and a missing row a 404, saying what exists; without the encoder a 501', async () => {
  const problem = async (path: string, status: number, pattern: RegExp) => {
    const { res, body } = await get(path)
    assert.equal(res.status, status, JSON.stringify(body))
    assert.equal(res.headers.get('content-type'), 'application/problem+json')
    assert.match(String(body.detail), pattern)
  }
  await problem(`/datasets/${demo.spam}/documents/0/activations`, 400, /latents is required/)
  await problem(`/datasets/${demo.spam}/documents/0/activations?latents=1,x`, 400, /comma-separated/)
  await problem(
    `/datasets/${demo.spam}/documents/0/activations?latents=${Array.from({ length: 33 }, (_, i) => i).join(',')}`,
    400,
    /at most 32/
  )
  await problem(
    `/datasets/${demo.spam}/documents/0/activations?latents=5,99999`,
    400,
    /latent 99999 does not exist.*0-/
  )
  await problem(`/datasets/${demo.spam}/documents/9999/activations?latents=5`, 404, /row 9999 does not exist/)
  await problem(`/datasets/${demo.spam}/activations`, 400, /text is required/)
  await problem(`/datasets/${demo.spam}/activations?text=%20`, 400, /text is required/)
  await problem(`/datasets/${demo.spam}/activations?text=hi&top=0`, 400, /top/)
  await problem(`/datasets/${demo.spam}/activations?text=hi&latents=99999`, 400, /latent 99999 does not exist/)
  await problem(
    `/datasets/${demo.spam}/activations?text=hi&format=chat`,
    400,
    /format=chat, text is a JSON list.*not JSON/
  )
  await problem(
    `/datasets/${demo.spam}/activations?text=${encodeURIComponent('[{"role":"user"}]')}&format=chat`,
    400,
    /at 0\.content/
  )

  const objects = new FsObjectStore(join(demo.dataDir, 'store'))
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders: catalogOf(await loadEncoders([DEMO_ENCODER_DIR], () => {})),
    mode: 'local',
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(demo.dataDir, 'activations-queue'))
  })
  const res = await app.request(`/datasets/${demo.spam}/documents/0/activations?latents=5`)
  assert.equal(res.status, 501)
  const body = (await res.json()) as { code: string; detail: string }
  assert.equal(body.code, 'encoder-not-held')
  assert.match(body.detail, /position/)
  assert.match(body.detail, /does not hold it.*GET \/encoders/)
  const text = await app.request(`/datasets/${demo.spam}/activations?text=hello`)
  assert.equal(text.status, 501)
  assert.equal(((await text.json()) as { code: string }).code, 'encoder-not-held')
})
