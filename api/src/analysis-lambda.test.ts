/** @module The analysis Lambda's SQS batch handling: only failed records are reported, and the last receive marks the job failed. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { getJob, submitAnalysisJob, type AnalysisJobDeps } from './services/analysis-jobs.ts'
import { handleAnalysisBatch, type SqsRecord } from './analysis-lambda.ts'

function setup(runner: () => Promise<unknown>) {
  const objects = new MemoryObjectStore()
  const sent: AnalysisQueueMessage[] = []
  const queue = {
    send: async (m: AnalysisQueueMessage) => {
      sent.push(m)
      return String(sent.length)
    }
  } as unknown as JobQueue<AnalysisQueueMessage>
  const deps: AnalysisJobDeps = {
    objects,
    datasets: new DatasetStore(objects),
    encoders: new StaticEncoderCatalog([]),
    embedder: new OfflineEmbedder(),
    queue,
    runners: { clusters: runner, correlations: runner }
  }
  return { deps, sent, objects }
}
const record = (messageId: string, body: unknown, receiveCount: number): SqsRecord => ({
  messageId,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  attributes: { ApproximateReceiveCount: String(receiveCount) }
})

test('a good job is done and acknowledged; a malformed record alone is reported as failed', async () => {
  const { deps, sent } = setup(async () => ({ pairs: [] }))
  const job = await submitAnalysisJob(deps, 'acme', { analysis: 'correlations', dataset: 'ds_1', request: {} })
  const out = await handleAnalysisBatch(
    { Records: [record('m1', sent[0], 1), record('m2', '{not json', 1), record('m3', { kind: 'nope' }, 1)] },
    deps,
    3
  )
  assert.deepEqual(out.batchItemFailures, [{ itemIdentifier: 'm2' }, { itemIdentifier: 'm3' }])
  assert.equal((await getJob(deps.objects, 'acme', job.id))?.status, 'ready')
})

test('a transient failure is retried (reported, job not failed) until the last receive, which marks the job failed with why', async () => {
  const { deps, sent } = setup(async () => {
    throw new Error('disk on fire')
  })
  const job = await submitAnalysisJob(deps, 'acme', { analysis: 'clusters', dataset: 'ds_1', request: {} })
  const first = await handleAnalysisBatch({ Records: [record('m1', sent[0], 1)] }, deps, 3)
  assert.deepEqual(first.batchItemFailures, [{ itemIdentifier: 'm1' }])
  assert.notEqual((await getJob(deps.objects, 'acme', job.id))?.status, 'failed')
  const last = await handleAnalysisBatch({ Records: [record('m1', sent[0], 3)] }, deps, 3)
  assert.deepEqual(last.batchItemFailures, [{ itemIdentifier: 'm1' }])
  const failed = await getJob(deps.objects, 'acme', job.id)
  assert.equal(failed?.status, 'failed')
  assert.equal(failed?.error?.code, 'retries-exhausted')
  assert.match(failed?.error?.message ?? '', /disk on fire/)
})
