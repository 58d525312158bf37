/**
 * @module GET /datasets/{id}/similar?text= on the real local deployment (demo encoder): a document's own text, encoded
 * again, finds that document first and then the same neighbours as the document itself; without the encoder, a 501.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { SimilarDocuments, SimilarToText } from '@latentbase/shared/contract/similar'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { catalogOf, DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import { startDemoServer, type DemoServer } from '../testing/demo-server.ts'
import { createApp } from '../app.ts'

let demo: DemoServer
before(async () => {
  demo = await startDemoServer(20)
})
after(async () => {
  await demo?.close()
})

const get = async (path: string) => {
  const res = await fetch(`${demo.server.url}${path}`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

test("a document's own text finds it first (cosine 1), then the neighbours the document itself has", async () => {
  for (const row of [2, 11]) {
    const text = demo.documents.spam[row].text
    const like = await get(`/datasets/${demo.spam}/similar?text=${encodeURIComponent(text)}&limit=6&shared=3`)
    assert.equal(like.status, 200, JSON.stringify(like.body))
    const r = SimilarToText.parse(like.body)
    assert.equal(r.results[0].row, row, 'the document itself comes first')
    assert.ok(Math.abs(r.results[0].score - 1) < 1e-3, `score ${r.results[0].score}`)
    assert.equal(r.text, text.trim())
    assert.equal(r.candidates, demo.documents.spam.length)
    const own = SimilarDocuments.parse(
      (await get(`/datasets/${demo.spam}/documents/${row}/similar?limit=5&shared=3`)).body
    )
    assert.equal(r.latents, own.latents, 'the same latents as the stored document')
    assert.deepEqual(
      r.results.slice(1).map(x => [x.row, x.score, x.shared.map(s => s.latent)]),
      own.results.map(x => [x.row, x.score, x.shared.map(s => s.latent)])
    )
  }
  // A slice keeps the candidates to its documents.
  const where = encodeURIComponent(`tokens < 100`)
  const sliced = SimilarToText.parse(
    (await get(`/datasets/${demo.spam}/similar?text=${encodeURIComponent('click here to unsubscribe')}&where=${where}`))
      .body
  )
  assert.equal(sliced.where, 'tokens < 100')
  assert.ok(sliced.results.length <= sliced.candidates && sliced.candidates < demo.documents.spam.length)
})

test('without the encoder in this process a text cannot be encoded: 501 saying what to use instead; no text is a 400', async () => {
  const objects = new FsObjectStore(join(demo.dataDir, 'store'))
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders: catalogOf(await loadEncoders([DEMO_ENCODER_DIR], () => {})),
    mode: 'local',
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(demo.dataDir, 'text-queue'))
  })
  const res = await app.request(`/datasets/${demo.spam}/similar?text=hello`)
  assert.equal(res.status, 501)
  assert.equal(res.headers.get('content-type'), 'application/problem+json')
  const problem = (await res.json()) as { code: string; detail: string }
  assert.equal(problem.code, 'encoder-not-held')
  assert.match(problem.detail, /GET \/search/)
  assert.equal((await get(`/datasets/${demo.spam}/similar`)).status, 400)
})
