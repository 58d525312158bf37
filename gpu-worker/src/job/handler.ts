/** @module Handles one queue message (plan an encoding, encode a part, deliver a webhook): idempotent, so at-least-once delivery never duplicates. */
import type { DatasetRecord, DatasetStats } from '@latentbase/shared/contract/dataset'
import type { JobMessage, EncodeJob, EncodePartJob, WebhookJob } from '@latentbase/shared/contract/job'
import { FinalizeClaim } from '@latentbase/shared/contract/encode-plan'
import { layout } from '@latentbase/shared/store/layout'
import { PreconditionFailedError } from '@latentbase/shared/store/object-store'
import { markPartsQueued, partsQueued, readPlan } from '@latentbase/shared/store/encode-progress'
import type { WebhookEvent } from '@latentbase/shared/contract/webhook'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { DatasetDeletedError, type DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { deliverQueuedWebhook } from '@latentbase/shared/webhooks/queued-delivery'
import type { LoadedEncoder } from '../encode/runtime.ts'
import {
  encodePart,
  finalizeEncode,
  finishedParts,
  isPermanent,
  planEncode,
  readPartMarker,
  sweepBookkeeping,
  type EncodeOptions
} from './encode.ts'
import { failAppend, handleAppend, handleAppendPart } from './append.ts'

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

/** How this delivery of the message stands (SQS ApproximateReceiveCount: 1 on the first). */
export interface Delivery {
  receiveCount: number
}

export async function handleJob(
  job: JobMessage,
  deps: WorkerDeps,
  signal?: AbortSignal,
  delivery?: Delivery
): Promise<void> {
  // An append (job.version): the batch of a new version of a ready dataset (see append.ts).
  if (job.kind === 'encode')
    return job.version ? handleAppend({ ...job, version: job.version }, deps, signal) : handleEncode(job, deps, signal)
  if (job.kind === 'encode-part')
    return job.version
      ? handleAppendPart({ ...job, version: job.version }, deps, signal, delivery)
      : handleEncodePart(job, deps, signal, delivery)
  return handleWebhook(job, deps)
}

/** Plan the dataset and queue one encode-part job per part not yet done: any number of workers take them. */
async function handleEncode(job: EncodeJob, deps: WorkerDeps, signal?: AbortSignal): Promise<void> {
  const log = (line: string) => deps.log?.(`[encode ${job.datasetId}] ${line}`)
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record) {
    log('dataset deleted or unknown: nothing to do')
    return
  }
  if (record.status === 'failed') {
    log('already failed: not retried')
    return
  }
  if (await deps.datasets.getManifest(job.tenant, job.datasetId)) {
    log('already committed (duplicate delivery)')
    return
  }
  // A redelivery before every part was queued (the marker) plans and queues them again: parts already done are skipped.
  if (record.status === 'running' && record.progress.parts && (await partsQueued(deps.objects, record))) {
    log('already planned and queued (duplicate delivery)')
    return
  }

  const running: DatasetRecord = {
    ...record,
    status: 'running',
    attempts: (record.attempts ?? 0) + 1,
    updatedAt: new Date().toISOString(),
    progress: { documents: { done: 0, total: record.progress.documents.total }, tokens: 0 }
  }
  delete running.error
  await deps.datasets.putRecord(running)
  try {
    const encoder = await deps.encoder(record.encoder)
    if (!encoder)
      return fail(deps, running, 'unknown-encoder', `encoder "${record.encoder}" is not loaded on this worker`)
    log(`planning with ${encoder.info.id} (attempt ${running.attempts})`)
    const plan = await planEncode(running, encodeOptions(deps, encoder, signal, log))
    const done = await finishedParts(deps.objects, running)
    const { lastAttemptError: _cleared, ...planned } = running
    await deps.datasets.putRecord({
      ...planned,
      updatedAt: new Date().toISOString(),
      progress: {
        documents: { done: 0, total: plan.documents },
        tokens: 0,
        parts: { done: done.size, total: plan.parts.length }
      }
    })
    for (let part = 0; part < plan.parts.length; part++) {
      if (!done.has(part))
        await deps.queue.send({ kind: 'encode-part', tenant: job.tenant, datasetId: job.datasetId, part })
    }
    await markPartsQueued(deps.objects, running)
    log(`queued ${plan.parts.length - done.size} of ${plan.parts.length} part(s)`)
  } catch (err) {
    if (err instanceof DatasetDeletedError) {
      log('deleted while planning: dropped')
      return
    }
    if (isPermanent(err)) return fail(deps, running, err.code, err.message)
    // Transient: the message becomes visible again and is retried. The record says why meanwhile, and the
    // dead-letter handler can say it when the retries run out.
    await deps.datasets
      .putRecord({ ...running, lastAttemptError: (err as Error).message, updatedAt: new Date().toISOString() })
      .catch(() => {})
    throw err
  }
}

/**
 * Encode one part; then, when every part is done, finalize. The finalizer is the part job that creates the
 * finalize claim (create-only); its redeliveries keep the claim, so a finalizer that dies is resumed by its own
 * retry, and the manifest itself is created once.
 */
async function handleEncodePart(
  job: EncodePartJob,
  deps: WorkerDeps,
  signal?: AbortSignal,
  delivery?: Delivery
): Promise<void> {
  const log = (line: string) => deps.log?.(`[encode ${job.datasetId} part ${job.part}] ${line}`)
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record) {
    log('dataset deleted or unknown: nothing to do')
    return
  }
  if (record.status === 'failed') {
    log('dataset failed: part dropped')
    return
  }
  const prefix = layout.datasetPrefix(job.tenant, job.datasetId)
  const committed = await deps.datasets.getManifest(job.tenant, job.datasetId)
  if (committed) {
    // A finalizer that died after the commit: finish what it left (record, event, sweep).
    await markReady(deps, record, committed.summary as unknown as DatasetStats)
    await sweepBookkeeping(deps.objects, record)
    return
  }
  try {
    const plan = await readPlan(deps.objects, record)
    if (!plan) throw new Error('the dataset has no plan yet')
    const encoder = await deps.encoder(record.encoder)
    if (!encoder)
      return fail(deps, record, 'unknown-encoder', `encoder "${record.encoder}" is not loaded on this worker`)
    const options = encodeOptions(deps, encoder, signal, log)
    if (!(await readPartMarker(deps.objects, record, job.part))) {
      await encodePart(record, plan, job.part, { ...options, receiveCount: delivery?.receiveCount ?? 1 })
    }
    const done = await finishedParts(deps.objects, record)
    if (done.size < plan.parts.length) return
    const claim = JSON.stringify({ part: job.part })
    try {
      await deps.objects.put(prefix + layout.finalizeClaim(), claim, {
        ifNoneMatch: true,
        contentType: 'application/json'
      })
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err
      const owner = await deps.objects.get(prefix + layout.finalizeClaim())
      if (owner && FinalizeClaim.parse(JSON.parse(new TextDecoder().decode(owner))).part !== job.part) {
        log('another part job finalizes')
        return
      }
    }
    log(`every part done: finalizing`)
    const { stats, committed: created } = await finalizeEncode(record, plan, options)
    if (!created) log('the manifest was already committed')
    await markReady(deps, record, stats)
    await sweepBookkeeping(deps.objects, record)
  } catch (err) {
    if (err instanceof DatasetDeletedError) {
      log('deleted while encoding: dropped')
      return
    }
    if (isPermanent(err)) return fail(deps, record, err.code, err.message)
    // Transient: retried on redelivery. Said in the part's own object (parts run in parallel: no record races),
    // which the dead-letter handler reads when the retries run out.
    await deps.objects
      .put(prefix + layout.partError(job.part), JSON.stringify({ message: (err as Error).message }))
      .catch(() => {})
    throw err
  }
}

function encodeOptions(
  deps: WorkerDeps,
  encoder: LoadedEncoder,
  signal: AbortSignal | undefined,
  log: (line: string) => void
) {
  return {
    objects: deps.objects,
    datasets: deps.datasets,
    encoder,
    allowLocalSources: deps.allowLocalSources,
    signal,
    log,
    ...deps.encodeOptions
  }
}

/** The dataset is committed: its record says ready, once, and the webhook hears of it (a stable message id). */
async function markReady(deps: WorkerDeps, record: DatasetRecord, stats: DatasetStats): Promise<void> {
  if (record.status === 'ready') return
  const { lastAttemptError: _cleared, ...done } = record
  const ready: DatasetRecord = {
    ...done,
    status: 'ready',
    stats,
    updatedAt: new Date().toISOString(),
    progress: {
      documents: { done: stats.documents, total: stats.documents },
      tokens: stats.tokens,
      ...(stats.parts
        ? { parts: { done: stats.parts.count, total: stats.parts.count } }
        : record.progress.parts
          ? { parts: record.progress.parts }
          : {})
    }
  }
  // The event first: should the worker die between the two, the redelivery (record not yet ready) sends it again
  // under the same message id, which receivers deduplicate; the other order could lose it.
  await queueEvent(deps, ready, 'dataset.ready')
  await deps.datasets.putRecord(ready)
  deps.log?.(
    `[encode ${record.id}] ready: ${stats.documents} documents, ${stats.tokens} tokens in ${stats.seconds?.total?.toFixed(1) ?? '?'} s`
  )
}

/** Mark a dataset failed with a reason a user can act on, and tell its webhook. */
export async function fail(
  deps: Pick<WorkerDeps, 'datasets' | 'queue' | 'log'>,
  record: DatasetRecord,
  code: string,
  message: string
): Promise<void> {
  if (await deps.datasets.isTombstoned(record.tenant, record.id)) return
  const failed: DatasetRecord = {
    ...record,
    status: 'failed',
    error: { code, message },
    updatedAt: new Date().toISOString()
  }
  await deps.datasets.putRecord(failed)
  deps.log?.(`[encode ${record.id}] failed: ${code}: ${message}`)
  await queueEvent(deps, failed, 'dataset.failed')
}

/** Called when a message exhausted its receives (dead-lettered): the dataset is failed, never left running. */
export async function onDeadLetter(
  deps: Pick<WorkerDeps, 'datasets' | 'queue' | 'log'>,
  job: JobMessage,
  reason: string
): Promise<void> {
  if (job.kind === 'webhook') {
    deps.log?.(`[webhook ${job.datasetId}] dead-lettered: ${reason}`)
    return
  }
  if (job.version)
    return failAppend(deps, job, 'retries-exhausted', `appending version ${job.version} was given up (${reason})`)
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record || record.status === 'ready' || record.status === 'failed') return
  if (job.kind === 'encode-part') {
    const bytes = await deps.datasets.objects
      .get(layout.datasetPrefix(job.tenant, job.datasetId) + layout.partError(job.part))
      .catch(() => null)
    const lastError = bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as { message?: string }).message : undefined
    const last = lastError ? `; the last attempt failed with: ${lastError}` : ''
    await fail(deps, record, 'retries-exhausted', `encoding part ${job.part} was given up (${reason})${last}`)
    return
  }
  const last = record.lastAttemptError ? `; the last attempt failed with: ${record.lastAttemptError}` : ''
  await fail(
    deps,
    record,
    'retries-exhausted',
    `encoding was given up after ${record.attempts} attempts (${reason})${last}`
  )
}

async function queueEvent(
  deps: Pick<WorkerDeps, 'queue'>,
  record: DatasetRecord,
  type: WebhookEvent['type']
): Promise<void> {
  if (!record.webhook) return
  const { webhook, tenant, ...view } = record
  const event: WebhookEvent = { type, timestamp: record.updatedAt, data: { ...view, webhook: { url: webhook.url } } }
  await deps.queue.send({
    kind: 'webhook',
    tenant,
    datasetId: record.id,
    event: type,
    messageId: `msg_${record.id}_${type}_${record.attempts}`,
    body: JSON.stringify(event),
    timestamp: Math.floor(Date.now() / 1000),
    attempt: 0
  })
}

async function handleWebhook(job: WebhookJob, deps: WorkerDeps): Promise<void> {
  const log = (line: string) => deps.log?.(`[webhook ${job.datasetId}] ${line}`)
  await deliverQueuedWebhook(
    { queue: deps.queue, fetch: deps.fetch, log },
    job,
    async () => (await deps.datasets.getRecord(job.tenant, job.datasetId))?.webhook,
    'dataset deleted or webhook removed: dropped'
  )
}
