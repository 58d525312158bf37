/**
 * @module Tests of correlations fanned out over the analysis queue: a job split in blocks, run by two consumers of one
 * embedded queue, answers exactly what the single-process counter answers; the budget decides when it splits.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { analysisLayout } from '@latentbase/shared/contract/analysis-job'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from '../bench/synthetic-store.ts'
import { computeCorrelations } from './correlations-service.ts'
import {
  getJob,
  handleAnalysisMessage,
  liveProgress,
  onAnalysisDeadLetter,
  submitAnalysisJob,
  type AnalysisJobDeps
} from './analysis-jobs.ts'
import { runLocalJob } from './local-job-runner.ts'
import { createApp } from '../app.ts'
import type { CorrelationFanout } from './correlations-fanout.ts'
import { fanoutFromEnv } from './correlations-fanout.ts'

const TENANT = 'local'
const N_LATENTS = 400
const encoders = syntheticCatalog('syn', N_LATENTS, syntheticTopics(N_LATENTS, 6, 10))
/** Label embeddings by label length: some labels are "similar", so the similarity filter has work in both paths. */
const embedder: Embedder = {
  id: 'test-length',
  dimensions: 2,
  embed: async texts => Float32Array.from(texts.flatMap(t => [Math.cos(t.length), Math.sin(t.length)]))
}

let dir: string
let objects: FsObjectStore
let datasets: DatasetStore

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-fanout-'))
  objects = new FsObjectStore(join(dir, 'store'))
  datasets = new DatasetStore(objects)
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: TENANT, id: 'ds_fan', encoderId: 'syn' },
    { nDocs: 1500, nLatents: N_LATENTS, meanActive: 40, topics: 6, topicLatents: 10, topicRate: 0.7, seed: 4 }
  )
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const ctx = () => ({ objects, datasets, encoders, embedder, tenant: TENANT })

/** Submit a correlations job and run it with `consumers` consumers of the embedded queue, each splitting by `fanout`. */
async function runJob(request: Record<string, unknown>, fanout: CorrelationFanout, consumers: number) {
  const { job, lines } = await runLocalJob(
    { dataDir: dir, objects, datasets, encoders, embedder, fanout },
    { tenant: TENANT, analysis: 'correlations', dataset: 'ds_fan', request, consumers }
  )
  const result = JSON.parse(new TextDecoder().decode((await objects.get(job.resultKey!))!)) as Record<string, unknown>
  return { job, result, lines }
}

/** The answer without its timing (the only field that may differ between two runs). */
const stable = ({ seconds: _s, ...rest }: Record<string, unknown>) => rest

for (const [name, request] of [
  ['whole dataset', { dataset: 'ds_fan', limit: 300, minNpmi: 0.1, minCount: 3 }],
  [
    'slice with a presence threshold',
    { dataset: 'ds_fan', limit: 200, minNpmi: 0, minCount: 2, where: 'tokens >= 100', minActivation: 0.3 }
  ]
] as const) {
  test(`${name}: five blocks over two consumers answer exactly as one process`, async () => {
    const direct = await computeCorrelations(ctx(), CorrelationsQuery.parse(request))
    assert.ok(direct.pairs.length > 30, `the fixture has pairs (${direct.pairs.length})`)
    const { job, result, lines } = await runJob(request, { budgetBytes: 2 ** 30, minBlocks: 5 }, 2)
    assert.deepEqual(stable(result), stable(direct as unknown as Record<string, unknown>))
    assert.deepEqual(job.progress, { fraction: 1, phase: 'done' })
    const parts = (await objects.list(analysisLayout.parts(TENANT, job.id))).map(o => o.key)
    assert.equal(parts.filter(k => k.endsWith('.bin')).length, 5, 'one stored partial per block')
    assert.equal(lines.filter(l => / block \d of 5 in /.test(l)).length, 5, 'each block counted once')
    assert.equal(lines.filter(l => /5 blocks merged: ready/.test(l)).length, 1, 'one merge')
  })
}

test('the budget decides: entries within it count in one process; past it, one block that holds the triangle counts here', async () => {
  const request = { dataset: 'ds_fan', limit: 300, minNpmi: 0.1, minCount: 3 }
  const direct = await computeCorrelations(ctx(), CorrelationsQuery.parse(request))
  // ~400 latents: the triangle is ~0.6 MB of cells, the counter's entries ~1 MB.
  for (const budgetBytes of [2 ** 30, 800_000]) {
    const { job, result } = await runJob(request, { budgetBytes, minBlocks: 1 }, 1)
    assert.deepEqual(stable(result), stable(direct as unknown as Record<string, unknown>))
    assert.equal(await objects.head(analysisLayout.plan(TENANT, job.id)), null, 'no plan: nothing fanned out')
  }
  // Past one block: split.
  const { job, result } = await runJob(request, { budgetBytes: 200_000, minBlocks: 1 }, 1)
  assert.deepEqual(stable(result), stable(direct as unknown as Record<string, unknown>))
  const partials = (await objects.list(analysisLayout.parts(TENANT, job.id))).filter(o => o.key.endsWith('.bin'))
  assert.ok(partials.length >= 3, `${partials.length} blocks`)
})

test('the protocol, message by message: progress per block, redelivered parts and job messages, one merge, dead letters', async () => {
  const queue = new EmbeddedQueue<AnalysisQueueMessage>(join(dir, 'manual-queue'))
  const lines: string[] = []
  const deps: AnalysisJobDeps = {
    objects,
    datasets,
    encoders,
    embedder,
    queue,
    fanout: { budgetBytes: 2 ** 30, minBlocks: 3 },
    log: line => lines.push(line)
  }
  const request = { dataset: 'ds_fan', limit: 300, minNpmi: 0.1, minCount: 3 }
  const take = async () => {
    const got = await queue.receive({ max: 10 })
    for (const m of got) await queue.ack(m)
    return got.map(m => m.body)
  }
  const record = await submitAnalysisJob({ objects, queue }, TENANT, {
    analysis: 'correlations',
    dataset: 'ds_fan',
    request
  })
  const [job] = await take()
  await handleAnalysisMessage(deps, job)
  const parts = await take()
  assert.deepEqual(
    parts.map(m => m.kind === 'analysis-part' && [m.part, m.parts]),
    [
      [0, 3],
      [1, 3],
      [2, 3]
    ]
  )
  assert.deepEqual((await getJob(objects, TENANT, record.id))?.progress.phase, 'counting: 0 of 3 blocks')
  await handleAnalysisMessage(deps, job) // the job message again: nothing is planned twice
  assert.deepEqual(await take(), [])
  assert.ok(lines.some(l => /already fanned out/.test(l)))

  const fannedOut = await getJob(objects, TENANT, record.id)
  await handleAnalysisMessage(deps, parts[1])
  const after1 = await getJob(objects, TENANT, record.id)
  assert.equal(after1?.status, 'running')
  // The part left the record alone (a stale "running" could otherwise undo a merge that finished meanwhile); the
  // job's view counts the stored partials.
  assert.deepEqual(after1, fannedOut, 'a part does not write the job record')
  assert.equal((await liveProgress(objects, after1!)).progress.phase, 'counting: 1 of 3 blocks')
  const app = createApp({
    objects,
    datasets,
    encoders,
    embedder,
    queue: {} as never,
    analysisQueue: queue,
    mode: 'local',
    tenantOf: () => TENANT
  })
  const view = await app.request(`/jobs/${record.id}`)
  assert.equal(((await view.json()) as { progress: { phase: string } }).progress.phase, 'counting: 1 of 3 blocks')
  await handleAnalysisMessage(deps, parts[1]) // redelivered: its partial is stored, nothing is counted again
  assert.equal(lines.filter(l => / block 2 of 3 in /.test(l)).length, 1)
  await handleAnalysisMessage(deps, parts[0])
  assert.deepEqual(await take(), [], 'no merge before the last block')
  await handleAnalysisMessage(deps, parts[2])
  await handleAnalysisMessage(deps, parts[2])
  const merges = await take()
  assert.deepEqual(merges, [{ kind: 'analysis-merge', tenant: TENANT, jobId: record.id }], 'exactly one merge message')
  await handleAnalysisMessage(deps, merges[0])
  await handleAnalysisMessage(deps, merges[0]) // a duplicate merge leaves the ready job alone
  const ready = await getJob(objects, TENANT, record.id)
  assert.equal(ready?.status, 'ready')
  const result = JSON.parse(new TextDecoder().decode((await objects.get(ready!.resultKey!))!))
  const direct = await computeCorrelations(ctx(), CorrelationsQuery.parse(request))
  assert.deepEqual(stable(result), stable(direct as unknown as Record<string, unknown>))

  // A part that keeps failing fails its job, with the reason.
  const doomed = await submitAnalysisJob({ objects, queue }, TENANT, {
    analysis: 'correlations',
    dataset: 'ds_fan',
    request
  })
  await handleAnalysisMessage(deps, (await take())[0])
  const [part0] = await take()
  await onAnalysisDeadLetter(deps, part0, 'worker killed three times')
  const failed = await getJob(objects, TENANT, doomed.id)
  assert.equal(failed?.status, 'failed')
  assert.match(failed?.error?.message ?? '', /worker killed three times/)
  await handleAnalysisMessage(deps, part0) // a late delivery to a failed job does nothing
  assert.equal((await getJob(objects, TENANT, doomed.id))?.status, 'failed')
  await queue.close()
})

test('the split is configured by environment, with clear errors', () => {
  assert.deepEqual(fanoutFromEnv({}), { budgetBytes: 256 * 2 ** 20, minBlocks: 1 })
  assert.deepEqual(fanoutFromEnv({ LATENTBASE_CORRELATION_BUDGET_MB: '64', LATENTBASE_CORRELATION_BLOCKS: '4' }), {
    budgetBytes: 64 * 2 ** 20,
    minBlocks: 4
  })
  assert.throws(() => fanoutFromEnv({ LATENTBASE_CORRELATION_BUDGET_MB: 'lots' }), /BUDGET_MB must be a positive/)
  assert.throws(() => fanoutFromEnv({ LATENTBASE_CORRELATION_BLOCKS: '0' }), /BLOCKS must be a whole number/)
})
