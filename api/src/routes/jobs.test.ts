/** @module Tests of analysis jobs over HTTP: direct answers for small inputs, 202 + job + consumer + paged results, failures, webhooks, restarts. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { verifyWebhook } from '@latentbase/sdk'
import { ClustersResult } from '@latentbase/shared/contract/clusters'
import { CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { createApp } from '../app.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { defaultRunners, submitAnalysisJob, type AnalysisRunners } from '../services/analysis-jobs.ts'
import { startLocalAnalysis, type LocalAnalysis } from '../services/analysis-local.ts'
import {
  syntheticCatalog,
  syntheticTopics,
  writeSyntheticDataset,
  type SyntheticDataset
} from '../bench/synthetic-store.ts'

const TENANT = 'local'
const N_LATENTS = 512
const topics = syntheticTopics(N_LATENTS, 4, 12)
const encoders = syntheticCatalog('syn', N_LATENTS, topics)
const embedder: Embedder = {
  id: 'test-none',
  dimensions: 1,
  embed: async texts => new Float32Array(texts.length).fill(1)
}

/**
 * A stand-in clustering that really reads the store: each document goes to the planted topic whose latents it has most
 * of (mod k). The job machinery must carry its output unchanged, whatever the real clustering computes.
 */
let failNext = 0
const runners: AnalysisRunners = {
  async clusters(ctx, request, progress) {
    if (failNext > 0) {
      failNext--
      throw new Error('simulated crash of the worker')
    }
    const k = Number(request.k)
    const ds = await loadReadyDataset(ctx.datasets, ctx.tenant, String(request.dataset), 'dataset')
    const csr = await readByDocument(ctx.objects, ds.prefix, ds.manifest.latents.byDocument)
    const topicOfLatent = new Int32Array(N_LATENTS).fill(-1)
    topics.forEach((ls, t) => {
      ls.forEach(l => {
        topicOfLatent[l] = t
      })
    })
    const assignments: number[] = []
    const affinities: number[][] = []
    for (let i = 0; i < csr.nDocs; i++) {
      const votes = new Array<number>(k).fill(0)
      for (let j = csr.indptr[i]; j < csr.indptr[i + 1]; j++) {
        const t = topicOfLatent[csr.latents[j]]
        if (t >= 0) votes[t % k]++
      }
      const best = votes.indexOf(Math.max(...votes))
      assignments.push(best)
      const sum = votes.reduce((a, b) => a + b, 0) || 1
      affinities.push(votes.map(v => v / sum))
      progress?.(i / csr.nDocs, 'assigning')
    }
    const clusters = Array.from({ length: k }, (_, id) => ({ id, size: assignments.filter(a => a === id).length }))
    return { dataset: request.dataset, k, clusters, assignments, affinities }
  },
  async correlations() {
    throw new Error('not used here')
  }
}

let dir: string
let objects: FsObjectStore
let datasets: DatasetStore
let small: SyntheticDataset
let receiver: Server
let receiverUrl: string
const received: Array<{ headers: Record<string, string>; body: string }> = []

function appWith(
  analysisQueue: EmbeddedQueue<never> | LocalAnalysis['queue'],
  directMaxDocuments?: number,
  real = false
) {
  const deps = {
    objects,
    datasets,
    encoders,
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(dir, 'queue')),
    analysisQueue: analysisQueue as LocalAnalysis['queue'],
    embedder,
    runners: real ? undefined : runners,
    directMaxDocuments
  }
  const app = createApp(deps)
  return app
}

async function json(app: ReturnType<typeof appWith>, path: string, init?: RequestInit) {
  const res = await app.request(path, init)
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> }
}
const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body)
})

async function waitFor(app: ReturnType<typeof appWith>, id: string, statuses: string[], timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await json(app, `/jobs/${id}`)
    assert.equal(job.status, 200)
    if (statuses.includes(job.body.status)) return job.body
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.body.status}`)
    await new Promise(r => setTimeout(r, 50))
  }
}

function startAnalysis(extra: { maxReceives?: number; runners?: AnalysisRunners } = {}) {
  return startLocalAnalysis({
    dataDir: dir,
    objects,
    datasets,
    encoders,
    embedder,
    runners,
    resultChunkRows: 16,
    consumer: { retryDelaySeconds: () => 0 },
    ...extra
  })
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-analysis-'))
  objects = new FsObjectStore(join(dir, 'store'))
  datasets = new DatasetStore(objects)
  small = await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: TENANT, id: 'ds_small', encoderId: 'syn' },
    { nDocs: 60, nLatents: N_LATENTS, meanActive: 30, topics: 4, topicLatents: 12, topicRate: 0.8, seed: 3 }
  )
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
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`
})

after(async () => {
  receiver.close()
  await rm(dir, { recursive: true, force: true })
})

test('a small dataset is answered directly with the clustering itself', async () => {
  const analysis = startAnalysis()
  try {
    const app = appWith(analysis.queue)
    const res = await json(app, '/clusters', post({ dataset: 'ds_small', k: 4, seed: 1 }))
    assert.equal(res.status, 200)
    assert.equal(res.body.assignments.length, 60)
    // The stand-in reads the planted topics back from the store: a wrong read would scramble this.
    const agree = res.body.assignments.filter((a: number, i: number) => a === small.topicOf[i]).length
    assert.ok(agree >= 55, `only ${agree} of 60 documents were put with their planted topic`)
    assert.deepEqual(await analysis.queue.depth(), { waiting: 0, inFlight: 0 })
  } finally {
    await analysis.close()
  }
})

test('bad requests are refused before any job is made', async () => {
  const analysis = startAnalysis()
  try {
    const app = appWith(analysis.queue, 0)
    const k1 = await json(app, '/clusters', post({ dataset: 'ds_small', k: 1 }))
    assert.equal(k1.status, 400)
    assert.match(String(k1.body.detail), /k/)
    const missing = await json(app, '/clusters', post({ dataset: 'ds_missing', k: 3 }))
    assert.equal(missing.status, 404)
    assert.equal(missing.body.code, 'dataset-not-found')
    const noJob = await json(app, '/jobs/aj_nothing')
    assert.equal(noJob.status, 404)
    assert.equal(noJob.body.code, 'job-not-found')
    assert.equal((await json(app, '/jobs/..%2Fescape')).status, 404)
    assert.equal((await analysis.queue.depth()).waiting, 0)
  } finally {
    await analysis.close()
  }
})

test('a large input becomes a job: 202, progress, ready, the same result as the direct answer, read page by page', async () => {
  const analysis = startAnalysis()
  try {
    const direct = await json(appWith(analysis.queue), '/clusters', post({ dataset: 'ds_small', k: 3, seed: 5 }))
    assert.equal(direct.status, 200)
    const app = appWith(analysis.queue, 10) // 60 documents > 10: queued
    const accepted = await json(app, '/clusters', post({ dataset: 'ds_small', k: 3, seed: 5 }))
    assert.equal(accepted.status, 202)
    const { id, href, status } = accepted.body.job
    assert.match(id, /^aj_/)
    assert.equal(href, `/jobs/${id}`)
    assert.equal(accepted.headers.get('location'), href)
    assert.equal(status, 'queued')

    const job = await waitFor(app, id, ['ready', 'failed'])
    assert.equal(job.status, 'ready', JSON.stringify(job.error))
    assert.deepEqual(job.progress, { fraction: 1, phase: 'done' })
    assert.equal(job.resultHref, `/jobs/${id}/result`)
    assert.equal(job.analysis, 'clusters')
    assert.equal(job.dataset, 'ds_small')
    assert.equal(job.request.k, 3)

    const assignments: number[] = []
    const affinities: number[][] = []
    let next: string | null = `/jobs/${id}/result?limit=25`
    let pages = 0
    while (next) {
      const page = await json(app, next)
      assert.equal(page.status, 200)
      assert.equal(page.body.page.total, 60)
      assert.ok(page.body.assignments.length <= 25)
      assert.deepEqual(page.body.clusters, direct.body.clusters)
      assignments.push(...page.body.assignments)
      affinities.push(...page.body.affinities)
      next = page.body.page.next
      pages++
    }
    assert.equal(pages, 3)
    assert.deepEqual(assignments, direct.body.assignments)
    assert.deepEqual(affinities, direct.body.affinities)

    const middle = await json(app, `/jobs/${id}/result?offset=58&limit=10`)
    assert.deepEqual(middle.body.assignments, direct.body.assignments.slice(58))
    assert.equal(middle.body.page.next, null)
    const past = await json(app, `/jobs/${id}/result?offset=100`)
    assert.deepEqual(past.body.assignments, [])
  } finally {
    await analysis.close()
  }
})

test('a running job shows its progress and phase', async () => {
  let release!: () => void
  const gate = new Promise<void>(r => {
    release = r
  })
  const gated: AnalysisRunners = {
    ...runners,
    async clusters(ctx, request, progress) {
      progress?.(0.4, 'spectral embedding')
      await gate
      return runners.clusters(ctx, request)
    }
  }
  const analysis = startAnalysis({ runners: gated })
  try {
    const app = appWith(analysis.queue, 0)
    const accepted = await json(app, '/clusters', post({ dataset: 'ds_small', k: 2 }))
    const running = await waitFor(app, accepted.body.job.id, ['running'])
    const deadline = Date.now() + 5000
    let job = running
    while (job.progress.phase !== 'spectral embedding' && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 20))
      job = (await json(app, `/jobs/${accepted.body.job.id}`)).body
    }
    assert.deepEqual(job.progress, { fraction: 0.4, phase: 'spectral embedding' })
    assert.equal(job.status, 'running')
    release()
    const done = await waitFor(app, accepted.body.job.id, ['ready', 'failed'])
    assert.equal(done.status, 'ready')
    assert.deepEqual(done.progress, { fraction: 1, phase: 'done' }, 'a late progress write must not land after ready')
  } finally {
    release()
    await analysis.close()
  }
})

test('the real clustering service through a job gives the direct answer, seed for seed', async () => {
  const analysis = startAnalysis({ runners: defaultRunners })
  try {
    const body = { dataset: 'ds_small', k: 4, seed: 11 }
    const direct = await json(appWith(analysis.queue, undefined, true), '/clusters', post(body))
    assert.equal(direct.status, 200)
    const parsed = ClustersResult.parse(direct.body)
    assert.equal(parsed.assignments.length, 60)
    const app = appWith(analysis.queue, 0, true)
    const accepted = await json(app, '/clusters', post(body))
    assert.equal(accepted.status, 202)
    const job = await waitFor(app, accepted.body.job.id, ['ready', 'failed'])
    assert.equal(job.status, 'ready', JSON.stringify(job.error))
    const page = await json(app, `/jobs/${job.id}/result?limit=100`)
    assert.deepEqual(page.body.assignments, parsed.assignments)
    assert.deepEqual(page.body.clusters, direct.body.clusters)
    assert.ok(page.body.page.fields.includes('affinities'))
    const tooMany = await json(app, '/clusters', post({ ...body, k: 500 }))
    assert.equal(tooMany.status, 400, 'the clustering contract is checked before a job is made')
  } finally {
    await analysis.close()
  }
})

test('GET /correlations on a dataset over the direct limit queues a job whose result equals the direct answer', async () => {
  const analysis = startAnalysis({ runners: defaultRunners })
  try {
    const query = 'dataset=ds_small&minCount=2&maxLabelSimilarity=1&limit=5'
    const direct = await json(appWith(analysis.queue, 0, true), `/correlations?${query}`)
    assert.equal(direct.status, 200, '60 documents are under the default direct limit')
    const small = createApp({
      objects,
      datasets,
      encoders,
      mode: 'local',
      tenantOf: () => TENANT,
      queue: new EmbeddedQueue<JobMessage>(join(dir, 'queue')),
      analysisQueue: analysis.queue,
      embedder,
      correlationsDirectMaxDocuments: 50
    })
    const accepted = await json(small, `/correlations?${query}`)
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body))
    assert.equal(accepted.headers.get('location'), accepted.body.job.href)
    const forced = await json(appWith(analysis.queue, 0, true), `/correlations?${query}&async=true`)
    assert.equal(forced.status, 202, 'async=true queues whatever the size')
    const bad = await json(small, '/correlations?dataset=ds_small&minNpmi=7')
    assert.equal(bad.status, 400, 'parameters are checked before a job is made')
    const missing = await json(small, '/correlations?dataset=ds_nope')
    assert.equal(missing.status, 404, 'an unknown dataset is refused before a job is made')

    const app = appWith(analysis.queue, 0, true)
    const job = await waitFor(app, accepted.body.job.id, ['ready', 'failed'])
    assert.equal(job.status, 'ready', JSON.stringify(job.error))
    const res = await json(app, `/jobs/${job.id}/result`)
    const result = CorrelationsResult.parse(res.body)
    assert.equal(res.body.page, undefined, 'correlations have no per-row arrays to page')
    assert.equal(result.documents, 60)
    assert.ok(result.pairs.length > 0 && result.pairs.length <= 5)
    const { seconds: _a, ...fromJob } = result
    const { seconds: _b, ...fromRequest } = CorrelationsResult.parse(direct.body)
    assert.deepEqual(fromJob, fromRequest, 'the job runs the same function as the direct answer')
  } finally {
    await analysis.close()
  }
})

test('a job whose dataset went away fails with the reason, tells its webhook, and has no result', async () => {
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: TENANT, id: 'ds_doomed', encoderId: 'syn' },
    { nDocs: 20, nLatents: N_LATENTS, meanActive: 20, topics: 4, topicLatents: 12, seed: 9 }
  )
  // No consumer yet: the dataset is deleted while the job waits in the queue.
  const queue = new EmbeddedQueue<never>(join(dir, 'analysis-queue'))
  const app = appWith(queue, 0)
  const accepted = await json(app, '/clusters', post({ dataset: 'ds_doomed', k: 2, webhook: { url: receiverUrl } }))
  assert.equal(accepted.status, 202)
  const secret = accepted.body.webhookSecret
  assert.match(secret, /^whsec_/)
  await datasets.deleteDataset(TENANT, 'ds_doomed')
  await queue.close()

  const analysis = startAnalysis()
  try {
    const app2 = appWith(analysis.queue, 0)
    const job = await waitFor(app2, accepted.body.job.id, ['ready', 'failed'])
    assert.equal(job.status, 'failed')
    assert.equal(job.error.code, 'dataset-not-found')
    assert.match(job.error.message, /ds_doomed/)
    assert.equal(job.webhook.url, receiverUrl)
    assert.equal(job.webhook.secret, undefined)
    const result = await json(app2, `/jobs/${job.id}/result`)
    assert.equal(result.status, 409)
    assert.equal(result.body.code, 'job-failed')
    assert.match(String(result.body.detail), /ds_doomed/)

    const deadline = Date.now() + 10_000
    while (!received.length && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    assert.equal(received.length, 1)
    const event = await verifyWebhook(secret, received[0].headers, received[0].body)
    assert.equal(event.type, 'analysis.failed')
    assert.equal((event.data as { id: string }).id, job.id)
    await assert.rejects(
      verifyWebhook(`whsec_${Buffer.alloc(24, 7).toString('base64')}`, received[0].headers, received[0].body)
    )
  } finally {
    await analysis.close()
  }
})

test('a queued job survives a restart, and a crash mid-run is retried to ready', async () => {
  const first = startAnalysis()
  await first.close() // the consumer is gone before anything is posted
  const queue = new EmbeddedQueue<never>(join(dir, 'analysis-queue'))
  const accepted = await json(appWith(queue, 0), '/clusters', post({ dataset: 'ds_small', k: 2 }))
  assert.equal(accepted.status, 202)
  await queue.close()

  // A new process: new store and queue objects over the same folders.
  objects = new FsObjectStore(join(dir, 'store'))
  datasets = new DatasetStore(objects)
  const before = await json(
    appWith(new EmbeddedQueue<never>(join(dir, 'analysis-queue')), 0),
    `/jobs/${accepted.body.job.id}`
  )
  assert.equal(before.body.status, 'queued')
  const notYet = await json(
    appWith(new EmbeddedQueue<never>(join(dir, 'analysis-queue')), 0),
    `/jobs/${accepted.body.job.id}/result`
  )
  assert.equal(notYet.status, 409)
  assert.equal(notYet.body.code, 'job-not-ready')

  failNext = 1
  const analysis = startAnalysis()
  try {
    const app = appWith(analysis.queue, 0)
    const job = await waitFor(app, accepted.body.job.id, ['ready', 'failed'], 30_000)
    assert.equal(job.status, 'ready')
    assert.equal(job.attempts, 2, 'the first attempt crashed and the message was delivered again')
    const result = await json(app, `/jobs/${job.id}/result`)
    assert.equal(result.body.assignments.length, 60)
  } finally {
    await analysis.close()
  }
})

test('a job that keeps crashing is failed once its receives are used up, never left running', async () => {
  failNext = 100
  const analysis = startAnalysis({ maxReceives: 1 })
  try {
    const record = await submitAnalysisJob({ objects, queue: analysis.queue }, TENANT, {
      analysis: 'clusters',
      dataset: 'ds_small',
      request: { k: 2 }
    })
    const app = appWith(analysis.queue, 0)
    const job = await waitFor(app, record.id, ['ready', 'failed'], 30_000)
    assert.equal(job.status, 'failed')
    assert.equal(job.error.code, 'retries-exhausted')
    assert.match(job.error.message, /simulated crash/)
  } finally {
    failNext = 0
    await analysis.close()
  }
})
