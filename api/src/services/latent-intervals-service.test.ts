/**
 * @module GET /latents/{latent}/intervals on the real local deployment (demo encoder): every present document counted
 * in the interval of its value, seeded samples within their intervals, windows re-encoded by the local server that
 * peak at the stored value, and the same documents without windows where no encoder is held.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { LatentIntervals, LatentList } from '@latentbase/shared/contract/latents'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { catalogOf, DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import { startDemoServer, type DemoServer } from '../testing/demo-server.ts'
import { createApp } from '../app.ts'

let demo: DemoServer
let latent: number
let present: number
before(async () => {
  demo = await startDemoServer(40)
  const list = LatentList.parse(await (await fetch(`${demo.server.url}/latents?dataset=${demo.spam}&limit=50`)).json())
  // A latent present in about half the documents: values spread over several intervals.
  const mid = list.latents.find(l => l.documents >= 12 && l.documents <= 30) ?? list.latents[0]
  latent = mid.latent
  present = mid.documents
})
after(async () => {
  await demo?.close()
})

const get = async (base: string, query: string) => {
  const res = await fetch(`${base}/latents/${latent}/intervals?dataset=${demo.spam}&${query}`)
  return { status: res.status, body: (await res.json()) as unknown }
}

test('each present document is counted once, in the interval of its value; samples are seeded and windows peak at the value', async () => {
  const { status, body } = await get(demo.server.url, 'intervals=4&perInterval=3&seed=1')
  assert.equal(status, 200, JSON.stringify(body))
  const r = LatentIntervals.parse(body)
  assert.equal(r.windows, true, 'the local server holds the encoder')
  assert.equal(r.documents, present)
  assert.equal(
    r.intervals.reduce((s, i) => s + i.documents, 0),
    present
  )
  assert.equal(r.intervals.length, 4)
  assert.ok(Math.abs(r.intervals[0].to - r.max) < 1e-6 && r.intervals[3].from === 0)
  let examples = 0
  for (const iv of r.intervals) {
    assert.equal(iv.examples.length, Math.min(3, iv.documents))
    for (const ex of iv.examples) {
      examples++
      assert.ok(ex.value > iv.from - 1e-6 && ex.value <= iv.to + 1e-6, `${ex.value} in (${iv.from}, ${iv.to}]`)
      assert.ok(ex.tokens && ex.activations && ex.tokens.length === ex.activations.length)
      const peak = Math.max(...ex.activations!)
      assert.ok(
        Math.abs(peak - ex.value) <= 1e-3 * Math.max(1, ex.value),
        `row ${ex.row}: window ${peak}, pooled ${ex.value}`
      )
      assert.ok(ex.position >= 0)
      assert.ok(ex.snippet.length > 0)
      assert.equal(ex.id, demo.documents.spam[ex.row].id)
    }
  }
  assert.ok(examples >= 4, `${examples} examples`)
  const again = LatentIntervals.parse((await get(demo.server.url, 'intervals=4&perInterval=3&seed=1')).body)
  assert.deepEqual(again, r, 'the same seed, the same answer')

  // Where no process holds the encoder (a Worker, a Lambda): the same documents, without windows.
  const objects = new FsObjectStore(join(demo.dataDir, 'store'))
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders: catalogOf(await loadEncoders([DEMO_ENCODER_DIR], () => {})),
    mode: 'local',
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(demo.dataDir, 'other-queue'))
  })
  const bare = LatentIntervals.parse(
    await (
      await app.request(`/latents/${latent}/intervals?dataset=${demo.spam}&intervals=4&perInterval=3&seed=1`)
    ).json()
  )
  assert.equal(bare.windows, false)
  assert.deepEqual(
    bare.intervals.map(i => i.examples.map(e => [e.row, e.value, e.position])),
    r.intervals.map(i => i.examples.map(e => [e.row, e.value, e.position]))
  )
  assert.ok(bare.intervals.every(i => i.examples.every(e => e.tokens === null && e.activations === null)))
  // The snippet without a window sits around the peak (its character estimated from the token position): it holds
  // the few tokens around the peak that the window shows.
  const flat = (t: string) => t.replace(/▁/g, ' ').replace(/\s+/g, ' ').trim()
  const around = r.intervals.flatMap(i =>
    i.examples.map(e => {
      const at = e.activations!.indexOf(Math.max(...e.activations!))
      return flat(e.tokens!.slice(Math.max(1, at - 2), at + 3).join(''))
    })
  )
  const snippets = bare.intervals.flatMap(i => i.examples.map(e => flat(e.snippet)))
  const near = around.filter((a, k) => a.length >= 4 && snippets[k].includes(a)).length
  const checkable = around.filter(a => a.length >= 4).length
  assert.ok(checkable > 0 && near >= checkable / 2, `${near} of ${checkable} snippets hold their peak's tokens`)
})

test('a slice samples its own documents only; bad parameters are 400, a latent out of range 404', async () => {
  const where = encodeURIComponent('tokens >= 0')
  const whole = LatentIntervals.parse((await get(demo.server.url, `where=${where}`)).body)
  assert.equal(whole.documents, present, 'a slice holding every document counts them all')
  const sliced = LatentIntervals.parse(
    (await get(demo.server.url, `where=${encodeURIComponent(`latent ${latent} < ${whole.max / 2}`)}&perInterval=10`))
      .body
  )
  assert.ok(sliced.where)
  assert.ok(sliced.max <= whole.max / 2)
  for (const iv of sliced.intervals) for (const ex of iv.examples) assert.ok(ex.value < whole.max / 2)
  assert.ok(sliced.documents < present)

  assert.equal((await get(demo.server.url, 'intervals=1')).status, 400)
  assert.equal((await get(demo.server.url, 'perInterval=11')).status, 400)
  const res = await fetch(`${demo.server.url}/latents/99999999/intervals?dataset=${demo.spam}`)
  assert.equal(res.status, 404)
})
