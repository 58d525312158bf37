/** @module Tests of the analyses client (with the real clustering service): answered directly or through a job, paged results put back together, failures, query strings. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { z } from 'zod'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '@latentbase/api/app'
import { startLocalAnalysis, type LocalAnalysis } from '@latentbase/api/services/analysis-local'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from '@latentbase/api/bench/synthetic-store'
import { analysesClient, AnalysisJobFailedError, type Call } from './analyses.ts'
import { LatentbaseError } from './index.ts'

const topics = syntheticTopics(256, 3, 10)
const encoders = syntheticCatalog('syn', 256, topics)
const embedder = { id: 'none', dimensions: 1, embed: async (t: string[]) => new Float32Array(t.length).fill(1) }
let dir: string
let analysis: LocalAnalysis
const objects = new MemoryObjectStore()
const datasets = new DatasetStore(objects)

function clientFor(directMaxDocuments: number) {
  const deps = {
    objects,
    datasets,
    encoders,
    mode: 'local' as const,
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(dir, 'queue')),
    analysisQueue: analysis.queue,
    embedder,
    directMaxDocuments
  }
  const app = createApp(deps)
  // The same contract as createClient's call: errors become LatentbaseError, bodies are parsed with the schema.
  const call: Call = async <T>(
    schema: z.ZodType<T> | null,
    method: string,
    path: string,
    body?: unknown
  ): Promise<T> => {
    const res = await app.request(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!res.ok) throw new LatentbaseError(res.status, await res.json())
    return schema ? schema.parse(await res.json()) : (undefined as T)
  }
  return analysesClient(call)
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-sdk-analyses-'))
  analysis = startLocalAnalysis({ dataDir: dir, objects, datasets, encoders, embedder, resultChunkRows: 9 })
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_a', encoderId: 'syn' },
    { nDocs: 40, nLatents: 256, meanActive: 20, topics: 3, topicLatents: 10, seed: 5 }
  )
})

after(async () => {
  await analysis.close()
  await rm(dir, { recursive: true, force: true })
})

test('clusters() returns the same result whether the server answers directly or through a job', async () => {
  const direct = await clientFor(1000).clusters({ dataset: 'ds_a', k: 3 })
  assert.equal(direct.assignments.length, 40)
  assert.equal(direct.documents, 40)
  assert.equal(
    direct.clusters.reduce((s, c) => s + c.size, 0),
    40
  )
  const viaJob = await clientFor(0).clusters({ dataset: 'ds_a', k: 3 }, { intervalMs: 20 })
  assert.deepEqual(viaJob.assignments, direct.assignments)
  assert.deepEqual(viaJob.clusters, direct.clusters)
})

test('jobs: submit, wait with progress, read back in small pages', async () => {
  const client = clientFor(1000) // small, but ?async=true forces a job
  const { job } = await client.submitClusters({ dataset: 'ds_a', k: 4 })
  const seen: string[] = []
  const ready = await client.jobs.wait(job.id, { intervalMs: 20, onProgress: j => seen.push(j.status) })
  assert.equal(ready.status, 'ready')
  assert.equal(seen.at(-1), 'ready')
  const first = await client.jobs.result(job.id, { limit: 7 })
  assert.equal(first.page?.total, 40)
  assert.ok(first.page?.fields.includes('assignments'))
  assert.equal((first.assignments as number[]).length, 7)
  const all = await client.jobs.resultAll(job.id, { pageSize: 7 })
  const direct = await client.clusters({ dataset: 'ds_a', k: 4 })
  assert.deepEqual(all.assignments, direct.assignments)
  assert.deepEqual(all.clusters, direct.clusters)
  assert.deepEqual(all.affinities, direct.affinities)
})

test('a failed job throws AnalysisJobFailedError with its reason; API errors throw LatentbaseError', async () => {
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_gone', encoderId: 'syn' },
    { nDocs: 10, nLatents: 256, meanActive: 10, topics: 3, topicLatents: 10, seed: 2 }
  )
  const client = clientFor(0)
  const { job } = await client.submitClusters({ dataset: 'ds_gone', k: 2 })
  await datasets.deleteDataset('local', 'ds_gone')
  const err = await client.jobs.wait(job.id, { intervalMs: 20 }).catch((e: unknown) => e)
  assert.ok(err instanceof AnalysisJobFailedError, String(err))
  assert.equal(err.code, 'dataset-not-found')
  const missing = await client.clusters({ dataset: 'ds_none', k: 2 }).catch((e: unknown) => e)
  assert.ok(missing instanceof LatentbaseError)
  assert.equal(missing.status, 404)
})

test('query strings and a correlations answer that came as a job', async () => {
  const calls: string[] = []
  const correlations = {
    dataset: 'd',
    encoder: 'e',
    documents: 5,
    latentsConsidered: 2,
    pairsCounted: 1,
    dropped: { positional: 0, adjacent: 0, similarLabels: 0 },
    truncated: false,
    embedder: null,
    seconds: 0.1,
    pairs: []
  }
  const responder = (method: string, path: string): unknown => {
    calls.push(`${method} ${path}`)
    if (path.startsWith('/correlations')) return { job: { id: 'aj_1', status: 'queued', href: '/jobs/aj_1' } }
    if (path === '/jobs/aj_1')
      return {
        id: 'aj_1',
        analysis: 'correlations',
        dataset: 'd',
        status: 'ready',
        progress: { fraction: 1, phase: 'done' },
        request: {},
        createdAt: 'x',
        updatedAt: 'x',
        attempts: 1,
        href: '/jobs/aj_1'
      }
    if (path.startsWith('/jobs/aj_1/result'))
      return { ...correlations, job: { id: 'aj_1', analysis: 'correlations', dataset: 'd' } }
    return {}
  }
  const client = analysesClient(
    async (schema, method, path) => (schema ? schema.parse(responder(method, path)) : undefined) as never
  )
  const result = await client.correlations({ dataset: 'd', minNpmi: 0.3, dropAdjacent: false, limit: 10 })
  assert.deepEqual(result, correlations)
  assert.equal(calls[0], 'GET /correlations?dataset=d&minNpmi=0.3&dropAdjacent=false&limit=10')

  await client.search({ dataset: 'd s', q: 'refund request', latents: [4, 9], method: 'hybrid' }).catch(() => {})
  assert.equal(calls.at(-1), 'GET /search?dataset=d+s&q=refund+request&latents=4%2C9&method=hybrid')
  await client.latents.get('d', 17, { examples: 3 }).catch(() => {})
  assert.equal(calls.at(-1), 'GET /latents/17?dataset=d&examples=3')
  await client.latents.intervals('d', 17, { intervals: 4, perInterval: 2, where: 'tokens > 5' }).catch(() => {})
  assert.equal(calls.at(-1), 'GET /latents/17/intervals?dataset=d&intervals=4&perInterval=2&where=tokens+%3E+5')
})
