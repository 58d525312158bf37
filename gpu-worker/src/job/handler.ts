/** @module Handles one queue message (encode or webhook): idempotent, so at-least-once delivery never duplicates. */
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { JobMessage, EncodeJob, WebhookJob } from '@latentbase/shared/contract/job'
import type { WebhookEvent } from '@latentbase/shared/contract/webhook'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { DatasetDeletedError, type DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { deliverWebhook, nextRetryDelay } from '@latentbase/shared/webhooks/deliver'
import type { LoadedEncoder } from '../encoder/runtime.ts'
import { encodeDataset, isPermanent, type EncodeOptions } from './encode.ts'

/** SQS caps a message delay at 15 minutes; longer waits are re-queued hops. */
const MAX_QUEUE_DELAY_SECONDS = 900

export interface WorkerDeps {
  objects: ObjectStore
  datasets: DatasetStore
  queue: JobQueue<JobMessage>
  encoder: (id: string) => Promise<LoadedEncoder | undefined>
  allowLocalSources: boolean
  fetch?: typeof globalThis.fetch
  log?: (line: string) => void
  encodeOptions?: Partial<EncodeOptions>
}

export async function handleJob(job: JobMessage, deps: WorkerDeps, signal?: AbortSignal): Promise<void> {
  if (job.kind === 'encode') return handleEncode(job, deps, signal)
  return handleWebhook(job, deps)
}

async function handleEncode(job: EncodeJob, deps: WorkerDeps, signal?: AbortSignal): Promise<void> {
  const log = (line: string) => deps.log?.(`[encode ${job.datasetId}] ${line}`)
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record) { log('dataset deleted or unknown: nothing to do'); return }
  if (record.status === 'failed') { log('already failed: not retried'); return }
  if (record.status === 'ready' && await deps.datasets.getManifest(job.tenant, job.datasetId)) { log('already ready (duplicate delivery)'); return }

  const running: DatasetRecord = {
    ...record, status: 'running', attempts: (record.attempts ?? 0) + 1, updatedAt: new Date().toISOString(),
    progress: { documents: { done: 0, total: record.progress.documents.total }, tokens: 0 },
  }
  delete running.error
  await deps.datasets.putRecord(running)
  try {
    const encoder = await deps.encoder(record.encoder)
    if (!encoder) return fail(deps, running, 'unknown-encoder', `encoder "${record.encoder}" is not loaded on this worker`)
    log(`encoding with ${encoder.info.id} (attempt ${running.attempts})`)
    const { stats } = await encodeDataset(running, {
      objects: deps.objects, datasets: deps.datasets, encoder, allowLocalSources: deps.allowLocalSources, signal, log, ...deps.encodeOptions,
    })
    const { lastAttemptError: _cleared, ...done } = running
    const ready: DatasetRecord = {
      ...done, status: 'ready', stats, updatedAt: new Date().toISOString(),
      progress: { documents: { done: stats.documents, total: stats.documents }, tokens: stats.tokens },
    }
    await deps.datasets.putRecord(ready)
    log(`ready: ${stats.documents} documents, ${stats.tokens} tokens in ${stats.seconds?.total?.toFixed(1)} s`)
    await queueEvent(deps, ready, 'dataset.ready')
  } catch (err) {
    if (err instanceof DatasetDeletedError) { log('deleted while encoding: dropped'); return }
    if (isPermanent(err)) return fail(deps, running, err.code, err.message)
    // Transient: the message becomes visible again and is retried. The record says why meanwhile, and the
    // dead-letter handler can say it when the retries run out.
    await deps.datasets.putRecord({ ...running, lastAttemptError: (err as Error).message, updatedAt: new Date().toISOString() }).catch(() => {})
    throw err
  }
}

/** Mark a dataset failed with a reason a user can act on, and tell its webhook. */
export async function fail(deps: Pick<WorkerDeps, 'datasets' | 'queue' | 'log'>, record: DatasetRecord, code: string, message: string): Promise<void> {
  if (await deps.datasets.isTombstoned(record.tenant, record.id)) return
  const failed: DatasetRecord = { ...record, status: 'failed', error: { code, message }, updatedAt: new Date().toISOString() }
  await deps.datasets.putRecord(failed)
  deps.log?.(`[encode ${record.id}] failed: ${code}: ${message}`)
  await queueEvent(deps, failed, 'dataset.failed')
}

/** Called when a message exhausted its receives (dead-lettered): the dataset is failed, never left running. */
export async function onDeadLetter(deps: Pick<WorkerDeps, 'datasets' | 'queue' | 'log'>, job: JobMessage, reason: string): Promise<void> {
  if (job.kind !== 'encode') { deps.log?.(`[webhook ${job.datasetId}] dead-lettered: ${reason}`); return }
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record || record.status === 'ready' || record.status === 'failed') return
  const last = record.lastAttemptError ? `; the last attempt failed with: ${record.lastAttemptError}` : ''
  await fail(deps, record, 'retries-exhausted', `encoding was given up after ${record.attempts} attempts (${reason})${last}`)
}

async function queueEvent(deps: Pick<WorkerDeps, 'queue'>, record: DatasetRecord, type: WebhookEvent['type']): Promise<void> {
  if (!record.webhook) return
  const { webhook, tenant, ...view } = record
  const event: WebhookEvent = { type, timestamp: record.updatedAt, data: { ...view, webhook: { url: webhook.url } } }
  await deps.queue.send({
    kind: 'webhook', tenant, datasetId: record.id, event: type,
    messageId: `msg_${record.id}_${type}_${record.attempts}`,
    body: JSON.stringify(event), timestamp: Math.floor(Date.now() / 1000), attempt: 0,
  })
}

async function handleWebhook(job: WebhookJob, deps: WorkerDeps): Promise<void> {
  const log = (line: string) => deps.log?.(`[webhook ${job.datasetId}] ${line}`)
  const now = Math.floor(Date.now() / 1000)
  if (job.notBefore && job.notBefore > now) {
    await deps.queue.send(job, { delaySeconds: Math.min(job.notBefore - now, MAX_QUEUE_DELAY_SECONDS) })
    return
  }
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record?.webhook) { log('dataset deleted or webhook removed: dropped'); return }
  const result = await deliverWebhook(
    { url: record.webhook.url, secret: record.webhook.secret, messageId: job.messageId, timestamp: now, body: job.body },
    { fetch: deps.fetch },
  )
  if (result.ok) { log(`${job.event} delivered (${result.status})`); return }
  const delay = result.retry ? nextRetryDelay(job.attempt + 1) : undefined
  if (delay === undefined) { log(`${job.event} not delivered, giving up: ${result.error ?? result.status}`); return }
  log(`${job.event} not delivered (${result.error ?? result.status}); retry ${job.attempt + 1} in ${delay} s`)
  await deps.queue.send({ ...job, attempt: job.attempt + 1, notBefore: now + delay }, { delaySeconds: Math.min(delay, MAX_QUEUE_DELAY_SECONDS) })
}
