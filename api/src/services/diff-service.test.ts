/** @module Tests of a diff's peaks: what a latent without a label fires on, read off the top examples of the side where it is more frequent. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import {
  markedCatalog,
  markedLabels,
  markedWordOf,
  writeMarkedDataset,
  writeMarkedTopExamples,
  MARKED_LATENT,
  MARKER
} from '@latentbase/shared/llm/corpus-fixture'
import { DiffResult } from '@latentbase/shared/contract/diff'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'

const TENANT = 'local'
/** Latents 1-4 and 7 have no label; latents 1-5 have stored top examples in both datasets, 7 none. */
const UNLABELLED = new Set([1, 2, 3, 4, 7])

let app: ReturnType<typeof createApp>

before(async () => {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'a', nDocs: 120, markerShare: 0.4, seed: 1 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'b', nDocs: 120, markerShare: 0.1, seed: 2 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'bare', nDocs: 60, markerShare: 0.1, seed: 3 })
  await writeMarkedTopExamples(objects, datasets, { tenant: TENANT, id: 'a' })
  await writeMarkedTopExamples(objects, datasets, { tenant: TENANT, id: 'b' })
  const [entry] = await markedCatalog().list()
  const labels = markedLabels().map((l, i) => (UNLABELLED.has(i) ? null : l))
  app = createApp({
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: new StaticEncoderCatalog([{ info: entry, labels }]),
    mode: 'local',
    tenantOf: () => TENANT
  })
})

async function diff(query: string): Promise<DiffResult> {
  const res = await app.request(`/diff?${query}`)
  assert.equal(res.status, 200, query)
  return DiffResult.parse(await res.json())
}

test('a latent without a label gets its peak token from the side where it is more frequent; labelled ones none', async () => {
  const out = await diff('a=a&b=b&limit=24&direction=both')
  assert.equal(out.latents.length, 24)
  const marker = out.latents.find(l => l.latent === MARKED_LATENT)!
  assert.ok(marker.difference > 0.2, 'the marker latent fires more in a')
  assert.equal(marker.peak?.dataset, 'a')
  assert.equal(marker.peak?.token, MARKER)
  assert.equal(marker.peak?.count, 8)
  assert.equal(marker.peak?.examples, 8)
  assert.match(marker.peak?.window ?? '', new RegExp(`^\\.\\.\\..*\\b${MARKER}\\b.*\\.\\.\\.$`))
  for (const l of out.latents) {
    if (!UNLABELLED.has(l.latent)) {
      assert.ok(l.label, `latent ${l.latent} is labelled`)
      assert.equal('peak' in l, false, `latent ${l.latent}: a labelled latent gets no peak by default`)
    } else if (l.latent === 7) {
      assert.equal(l.peak, null, 'no stored examples: null')
    } else {
      assert.equal(l.peak?.dataset, l.difference >= 0 ? 'a' : 'b', `latent ${l.latent} (difference ${l.difference})`)
      assert.equal(l.peak?.token, markedWordOf(l.latent))
    }
  }
  // Some unlabelled latent is more frequent in b, so both sides' examples were read.
  assert.ok(out.latents.some(l => UNLABELLED.has(l.latent) && l.peak && l.difference < 0))
})

test('peaks=all describes labelled latents too; peaks=none reads statistics only; a dataset without examples gives null', async () => {
  const all = await diff('a=a&b=b&latents=5&limit=1&peaks=all')
  const five = all.latents.find(l => l.latent === 5)!
  assert.ok(five.label)
  assert.equal(five.peak?.token, markedWordOf(5))

  const none = await diff('a=a&b=b&limit=24&direction=both&peaks=none')
  assert.ok(none.latents.every(l => !('peak' in l)))

  const bare = await diff('a=bare&b=b&limit=24&direction=both')
  for (const l of bare.latents.filter(l => UNLABELLED.has(l.latent)))
    assert.equal(l.peak, l.difference >= 0 ? null : l.peak, `latent ${l.latent}: bare has no examples`)
  assert.ok(bare.latents.some(l => UNLABELLED.has(l.latent) && l.difference >= 0 && l.peak === null))

  const bad = await app.request('/diff?a=a&b=b&peaks=some')
  assert.equal(bad.status, 400)
  assert.match(String(((await bad.json()) as { detail?: string }).detail), /peaks/)
})
