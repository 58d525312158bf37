/** @module Analysis jobs: submit, run (the same pure analysis the API answers small requests with), store results page by page, and tell webhooks. */
import { ZodError } from 'zod'
import {
  AnalysisJobRecord,
  AnalysisQueueMessage,
  analysisLayout,
  type AnalysisJobMessage,
  type AnalysisMergeMessage,
  type AnalysisPartMessage,
  type AnalysisJobView,
  type AnalysisKind,
  type ResultRows
} from '@latentbase/shared/contract/analysis-job'
import type { WebhookJob } from '@latentbase/shared/contract/job'
import type { WebhookEvent } from '@latentbase/shared/contract/webhook'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { runConsumer, type ConsumerOptions } from '@latentbase/shared/queue/consumer'
import { deliverQueuedWebhook } from '@latentbase/shared/webhooks/queued-delivery'
import { randomId } from '@latentbase/shared/util/random-id'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { ApiError } from '../problem.ts'
import type { AnalysisContext, WindowMiner } from './context.ts'
import { computeCorrelations } from './correlations-service.ts'
import { computeClusters } from './clusters-service.ts'
import type { LlmClient } from '@latentbase/shared/llm/client'
import { generateHypotheses } from './hypotheses-service.ts'
import { verifyHypotheses } from './verify-service.ts'
import { relabelEncoder } from './relabel-service.ts'
import { llmOf, requireLlm } from './llm-helpers.ts'
import {
  countBlockBytes,
  fanoutFromEnv,
  mergeBlocks,
  planCorrelations,
  type CorrelationFanout,
  type CorrelationsPlan
} from './correlations-fanout.ts'
import { planClusters } from './clusters-service.ts'
import { assignPartBytes, clusterPartDocsFromEnv, mergeClusterParts, type ClustersPlan } from './clusters-fanout.ts'
import { decodeFit, encodeFit } from '@latentbase/shared/analysis/clustering/assign'

/** Rows per stored chunk of a result's per-row arrays (one page read touches one or two chunks). */
export const RESULT_CHUNK_ROWS = 10_000
/** Progress is written to the record at most this often: a store write per k-means iteration would cost more than it says. */
const PROGRESS_WRITE_MS = 1000

export type ProgressFn = (fraction: number, phase: string) => void
/** One analysis as a function of the context and its request: the same function serves direct answers and jobs. */
export type AnalysisRunner = (
  ctx: AnalysisContext,
  request: Record<string, unknown>,
  progress?: ProgressFn
) => Promise<unknown>
/** Injected runners (tests) may leave kinds out: those fall back to the default runners. */
export type AnalysisRunners = Record<'clusters' | 'correlations', AnalysisRunner> &
  Partial<Record<AnalysisKind, AnalysisRunner>>

/** The analysis services: the job machinery depends only on `compute*(ctx, request, progress)`, not on how they work. */
export const defaultRunners: Record<AnalysisKind, AnalysisRunner> = {
  clusters: (ctx, request, progress) => computeClusters(ctx, request, progress),
  correlations: (ctx, request, progress) => computeCorrelations(ctx, correlationsQuery(request), progress),
  // The LLM analyses: the stored request is the endpoint's body (hypotheses: `a` is the job's dataset; relabel: plus `encoder`).
  hypotheses: (ctx, request) => generateHypotheses(ctx, requireLlm(ctx.llm, 'the hypotheses job'), request as never),
  'hypotheses-verify': (ctx, request, progress) =>
    verifyHypotheses(ctx, requireLlm(ctx.llm, 'the verification job'), request as never, progress),
  relabel: (ctx, request, progress) => {
    if (typeof request.encoder !== 'string')
      throw new ApiError(400, 'invalid-request', 'a relabel job needs the encoder id in its request')
    const llm = request.labeler === 'offline' ? null : requireLlm(ctx.llm, 'the relabel job')
    return relabelEncoder(ctx, request.encoder, llm, request as never, progress)
  }
}

/** A stored correlations request as its query: stored requests are query-string shaped or already parsed. */
function correlationsQuery(request: Record<string, unknown>): CorrelationsQuery {
  // Booleans go back to the strings the query schema takes.
  const raw = Object.fromEntries(Object.entries(request).map(([k, v]) => [k, typeof v === 'boolean' ? String(v) : v]))
  return CorrelationsQuery.parse(raw)
}

/** Analysis kinds that need an LLM: their routes answer 503 llm-not-configured before queueing anything. */
export const LLM_ANALYSES: ReadonlySet<AnalysisKind> = new Set(['hypotheses', 'hypotheses-verify', 'relabel'])

export interface AnalysisJobDeps {
  /** Re-encodes chosen documents for per-token windows (where this process holds the encoders). */
  windowMiner?: WindowMiner
  objects: ObjectStore
  datasets: DatasetStore
  encoders: EncoderCatalog
  embedder: Embedder
  /** The analysis queue (not the encode queue): analysis jobs and their webhook deliveries. */
  queue: JobQueue<AnalysisQueueMessage>
  runners?: AnalysisRunners
  log?: (line: string) => void
  fetch?: typeof globalThis.fetch
  now?: () => Date
  /** Rows per stored chunk of per-row result arrays (default RESULT_CHUNK_ROWS). */
  resultChunkRows?: number
  /** The LLM of the LLM analyses and options; null: none. Left out: read once from LLM_* in `env` (default process.env). */
  llm?: LlmClient | null
  env?: Record<string, string | undefined>
  /**
   * How correlation jobs split over the queue's consumers (see docs/jobs.md). Left out: LATENTBASE_CORRELATION_BUDGET_MB
   * and LATENTBASE_CORRELATION_BLOCKS in `env` (default process.env).
   */
  fanout?: CorrelationFanout
  /** Documents per assignment part of a clustering fitted on a sample. Left out: LATENTBASE_CLUSTER_PART_DOCS (50,000). */
  clusterPartDocs?: number
}

const text = new TextDecoder()
const nowIso = (deps: Pick<AnalysisJobDeps, 'now'>) => (deps.now ? deps.now() : new Date()).toISOString()

/** Job ids are random, URL-safe and valid store key segments. */
export function newJobId(): string {
  return randomId('aj_', 14)
}

export async function getJob(objects: ObjectStore, tenant: string, jobId: string): Promise<AnalysisJobRecord | null> {
  let key: string
  try {
    key = analysisLayout.record(tenant, jobId)
  } catch {
    return null
  } // an id that cannot exist
  const bytes = await objects.get(key)
  return bytes ? AnalysisJobRecord.parse(JSON.parse(text.decode(bytes))) : null
}

export async function putJob(objects: ObjectStore, record: AnalysisJobRecord): Promise<void> {
  const parsed = AnalysisJobRecord.parse(record)
  await objects.put(analysisLayout.record(parsed.tenant, parsed.id), JSON.stringify(parsed), {
    contentType: 'application/json'
  })
}

export function jobHref(id: string): string {
  return `/jobs/${id}`
}

export function toJobView(record: AnalysisJobRecord): AnalysisJobView {
  const { tenant: _t, webhook, resultKey: _r, rows: _rows, ...rest } = record
  return {
    ...rest,
    href: jobHref(record.id),
    ...(record.status === 'ready' ? { resultHref: `${jobHref(record.id)}/result` } : {}),
    ...(webhook ? { webhook: { url: webhook.url } } : {})
  }
}

export interface SubmitAnalysis {
  analysis: AnalysisKind
  dataset: string
  request: Record<string, unknown>
  webhook?: { url: string; secret: string }
}

/** Store a queued job record, then queue its message (a message without a record is dropped by the runner). */
export async function submitAnalysisJob(
  deps: Pick<AnalysisJobDeps, 'objects' | 'queue' | 'now'>,
  tenant: string,
  spec: SubmitAnalysis
): Promise<AnalysisJobRecord> {
  const at = nowIso(deps)
  const record: AnalysisJobRecord = {
    id: newJobId(),
    tenant,
    analysis: spec.analysis,
    dataset: spec.dataset,
    status: 'queued',
    progress: { fraction: 0, phase: 'queued' },
    request: spec.request,
    createdAt: at,
    updatedAt: at,
    attempts: 0,
    ...(spec.webhook ? { webhook: spec.webhook } : {})
  }
  await putJob(deps.objects, record)
  await deps.queue.send({ kind: 'analysis', tenant, jobId: record.id })
  return record
}

/** A failure no retry can fix: the request or the dataset is wrong, not the machine. */
function permanentFailure(err: unknown): { code: string; message: string } | null {
  if (err instanceof ApiError && err.status < 500) return { code: err.code, message: err.message }
  // No LLM on this consumer: retrying will not configure one.
  if (err instanceof ApiError && (err.code === 'llm-not-configured' || err.code === 'llm-misconfigured'))
    return { code: err.code, message: err.message }
  if (err instanceof ZodError) {
    const first = err.issues[0]
    return {
      code: 'invalid-request',
      message: `invalid request: ${first?.path.join('.') || '(root)'}: ${first?.message ?? err.message}`
    }
  }
  if (err instanceof RangeError) return { code: 'invalid-request', message: err.message }
  return null
}

/** Which top-level arrays of a result have one entry per document row (paged apart from the rest). */
export function perRowFields(analysis: AnalysisKind, result: Record<string, unknown>): string[] {
  if (analysis !== 'clusters' || !Array.isArray(result.assignments)) return []
  const n = result.assignments.length
  return Object.keys(result).filter(
    k => k !== 'clusters' && Array.isArray(result[k]) && (result[k] as unknown[]).length === n
  )
}

/** Write result.json (without its per-row arrays) and the per-row arrays in chunks; returns where they are. */
export async function writeResult(
  objects: ObjectStore,
  record: AnalysisJobRecord,
  result: unknown,
  chunkRows = RESULT_CHUNK_ROWS
): Promise<{ resultKey: string; rows?: ResultRows }> {
  const tenant = record.tenant
  const resultKey = analysisLayout.result(tenant, record.id)
  if (!result || typeof result !== 'object' || Array.isArray(result)) {
    await objects.put(resultKey, JSON.stringify(result ?? null), { contentType: 'application/json' })
    return { resultKey }
  }
  const body = result as Record<string, unknown>
  const fields = perRowFields(record.analysis, body)
  if (!fields.length) {
    await objects.put(resultKey, JSON.stringify(body), { contentType: 'application/json' })
    return { resultKey }
  }
  const count = (body[fields[0]] as unknown[]).length
  const rows: ResultRows = { fields, count, chunkRows }
  for (let c = 0; c * chunkRows < count; c++) {
    const chunk: Record<string, unknown[]> = {}
    for (const f of fields) chunk[f] = (body[f] as unknown[]).slice(c * chunkRows, (c + 1) * chunkRows)
    await objects.put(analysisLayout.rowsChunk(tenant, record.id, c), JSON.stringify(chunk), {
      contentType: 'application/json'
    })
  }
  const summary: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(body)) if (!fields.includes(k)) summary[k] = v
  await objects.put(resultKey, JSON.stringify(summary), { contentType: 'application/json' })
  return { resultKey, rows }
}

export interface ResultPage {
  result: Record<string, unknown>
  page?: { offset: number; limit: number; total: number; fields: string[]; next: string | null }
}

/** The result of a ready job with its per-row arrays cut to [offset, offset + limit): reads only the chunks that overlap. */
export async function readResultPage(
  objects: ObjectStore,
  record: AnalysisJobRecord,
  offset: number,
  limit: number
): Promise<ResultPage> {
  if (!record.resultKey) throw new Error(`job ${record.id} has no result`)
  const bytes = await objects.get(record.resultKey)
  if (!bytes) throw new ApiError(410, 'result-gone', `the result of job "${record.id}" is no longer stored`)
  const parsed = JSON.parse(text.decode(bytes)) as unknown
  const result = (
    parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : { value: parsed }
  ) as Record<string, unknown>
  const rows = record.rows
  if (!rows) return { result }
  const start = Math.min(offset, rows.count)
  const end = Math.min(rows.count, start + limit)
  const out: Record<string, unknown[]> = Object.fromEntries(rows.fields.map(f => [f, []]))
  for (let c = Math.floor(start / rows.chunkRows); c * rows.chunkRows < end; c++) {
    const chunkBytes = await objects.get(analysisLayout.rowsChunk(record.tenant, record.id, c))
    if (!chunkBytes)
      throw new ApiError(410, 'result-gone', `part of the result of job "${record.id}" is no longer stored`)
    const chunk = JSON.parse(text.decode(chunkBytes)) as Record<string, unknown[]>
    const base = c * rows.chunkRows
    const lo = Math.max(0, start - base)
    const hi = Math.min(chunk[rows.fields[0]].length, end - base)
    for (const f of rows.fields) for (let i = lo; i < hi; i++) out[f].push(chunk[f][i])
  }
  const next = end < rows.count ? `${jobHref(record.id)}/result?offset=${end}&limit=${limit}` : null
  return { result: { ...result, ...out }, page: { offset: start, limit, total: rows.count, fields: rows.fields, next } }
}

/** Records progress at most once a second, in order; `flush` waits for the last write so it cannot land after "ready". */
function progressWriter(deps: AnalysisJobDeps, running: AnalysisJobRecord) {
  let chain: Promise<void> = Promise.resolve()
  let last = 0
  let closed = false
  const report: ProgressFn = (fraction, phase) => {
    const t = Date.now()
    if (closed || t - last < PROGRESS_WRITE_MS) return
    last = t
    const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0))
    const rec: AnalysisJobRecord = {
      ...running,
      progress: { fraction: f, phase: String(phase).slice(0, 200) },
      updatedAt: nowIso(deps)
    }
    chain = chain
      .then(() => putJob(deps.objects, rec))
      .catch(err => deps.log?.(`[analysis ${running.id}] progress not recorded: ${(err as Error).message}`))
  }
  return {
    report,
    flush: async () => {
      closed = true
      await chain
    }
  }
}

/** Run one analysis job: load its record, run the service, write the result, then mark it ready (or failed with a reason). */
export async function runAnalysisJob(
  deps: AnalysisJobDeps,
  message: AnalysisJobMessage,
  signal?: AbortSignal
): Promise<void> {
  const log = (line: string) => deps.log?.(`[analysis ${message.jobId}] ${line}`)
  const record = await getJob(deps.objects, message.tenant, message.jobId)
  if (!record) {
    log('no such job: nothing to do')
    return
  }
  if (record.status === 'failed') {
    log('already failed: not retried')
    return
  }
  if (record.status === 'ready' && record.resultKey && (await deps.objects.head(record.resultKey)) !== null) {
    log('already ready (duplicate delivery)')
    return
  }
  if (
    record.status === 'running' &&
    (await deps.objects.head(analysisLayout.fannedOut(record.tenant, record.id))) !== null
  ) {
    log('already fanned out in parts (duplicate delivery)')
    return
  }

  const running: AnalysisJobRecord = {
    ...record,
    status: 'running',
    attempts: (record.attempts ?? 0) + 1,
    updatedAt: nowIso(deps),
    progress: { fraction: 0, phase: 'starting' }
  }
  delete running.error
  await putJob(deps.objects, running)
  const injected = deps.runners?.[record.analysis]
  const runner = injected ?? defaultRunners[record.analysis]
  const progress = progressWriter(deps, running)
  const ctx = contextFor(deps, record, signal, progress.report)
  log(`${record.analysis} on ${record.dataset} (attempt ${running.attempts})`)
  const started = performance.now()
  let result: unknown
  try {
    const request = { ...record.request, dataset: record.dataset }
    if (record.analysis === 'correlations' && !injected) {
      // Correlations decide here whether they fit this process or fan out in blocks over the queue.
      const planned = await planCorrelations(ctx, correlationsQuery(request), fanoutOf(deps), progress.report)
      if ('plan' in planned) {
        await progress.flush()
        return fanOut(deps, running, planned.plan)
      }
      result = planned.result
    } else if (record.analysis === 'clusters' && !injected) {
      // Clusters past sampleMaxDocs are fitted here on a sample; the assignment of every document fans out in parts.
      const planned = await planClusters(ctx, request, progress.report, clusterPartDocsOf(deps))
      if ('plan' in planned) {
        await progress.flush()
        log(`fitted on a sample in ${((performance.now() - started) / 1000).toFixed(2)} s`)
        return fanOut(deps, running, planned.plan, encodeFit(planned.fit))
      }
      result = planned.result
    } else result = await runner(ctx, request, progress.report)
  } catch (err) {
    await progress.flush()
    return attemptFailed(deps, running, err)
  }
  await progress.flush()
  await completeJob(deps, running, result)
  log(`ready in ${((performance.now() - started) / 1000).toFixed(2)} s`)
}

function fanoutOf(deps: AnalysisJobDeps): CorrelationFanout {
  return deps.fanout ?? fanoutFromEnv(deps.env ?? process.env)
}

function clusterPartDocsOf(deps: AnalysisJobDeps): number {
  return deps.clusterPartDocs ?? clusterPartDocsFromEnv(deps.env ?? process.env)
}

function contextFor(
  deps: AnalysisJobDeps,
  record: AnalysisJobRecord,
  signal: AbortSignal | undefined,
  progress: ProgressFn
): AnalysisContext {
  return {
    objects: deps.objects,
    datasets: deps.datasets,
    encoders: deps.encoders,
    embedder: deps.embedder,
    tenant: record.tenant,
    progress,
    signal,
    llm: llmOf(deps).llm,
    windowMiner: deps.windowMiner
  }
}

/** A failed attempt: a permanent failure fails the job; anything else is recorded and thrown, so the message is retried. */
async function attemptFailed(deps: AnalysisJobDeps, running: AnalysisJobRecord, err: unknown): Promise<void> {
  const permanent = permanentFailure(err)
  if (permanent) return failJob(deps, running, permanent.code, permanent.message)
  const reason = err instanceof Error ? err.message : String(err)
  await putJob(deps.objects, { ...running, lastAttemptError: reason.slice(0, 1000), updatedAt: nowIso(deps) }).catch(
    e => deps.log?.(`[analysis ${running.id}] attempt error not recorded: ${(e as Error).message}`)
  )
  throw err // transient: the message becomes visible again and is retried
}

/** Write the result, mark the job ready and tell its webhook. */
async function completeJob(deps: AnalysisJobDeps, running: AnalysisJobRecord, result: unknown): Promise<void> {
  const where = await writeResult(deps.objects, running, result, deps.resultChunkRows)
  const ready: AnalysisJobRecord = {
    ...running,
    status: 'ready',
    ...where,
    progress: { fraction: 1, phase: 'done' },
    updatedAt: nowIso(deps)
  }
  delete ready.lastAttemptError
  await putJob(deps.objects, ready)
  await queueAnalysisEvent(deps, ready, 'analysis.ready')
}

const BLOCKS_START = 0.05
const BLOCKS_SHARE = 0.85

/** A plan stored in a fanned-out job's folder: each analysis's own, with its part boundaries. */
type FanoutPlan = CorrelationsPlan | ClustersPlan

/**
 * What differs between the analyses that fan out: what a part computes (its stored partial) and how the partials
 * merge into the answer. The protocol around them (plan, one message per part, create-only partials, one merge
 * message, dead letters) is shared.
 */
interface FanoutKind {
  /** What the parts are called in progress and logs. */
  noun: string
  /** The phase shown while parts run. */
  verb: string
  part(
    ctx: AnalysisContext,
    record: AnalysisJobRecord,
    plan: FanoutPlan,
    data: Uint8Array | null,
    part: number
  ): Promise<Uint8Array>
  merge(
    ctx: AnalysisContext,
    record: AnalysisJobRecord,
    plan: FanoutPlan,
    data: Uint8Array | null,
    partials: Uint8Array[]
  ): Promise<unknown>
}

const needData = (data: Uint8Array | null, record: AnalysisJobRecord) => {
  if (!data) throw new Error(`the fitted sample of job ${record.id} is missing`)
  return decodeFit(data)
}

const FANOUT: Partial<Record<AnalysisKind, FanoutKind>> = {
  correlations: {
    noun: 'blocks',
    verb: 'counting',
    part: (ctx, record, plan, _data, part) => countBlockBytes(ctx, jobQuery(record), plan as CorrelationsPlan, part),
    merge: (ctx, record, plan, _data, partials) =>
      mergeBlocks(ctx, jobQuery(record), plan as CorrelationsPlan, partials)
  },
  clusters: {
    noun: 'parts',
    verb: 'assigning',
    part: (ctx, record, plan, data, part) => assignPartBytes(ctx, plan as ClustersPlan, needData(data, record), part),
    merge: (ctx, record, plan, data, partials) =>
      mergeClusterParts(ctx, plan as ClustersPlan, needData(data, record), partials)
  }
}

function fanoutKind(record: AnalysisJobRecord): FanoutKind {
  const kind = FANOUT[record.analysis]
  if (!kind) throw new Error(`${record.analysis} jobs do not fan out`)
  return kind
}

const partsPhase = (kind: FanoutKind, done: number, parts: number) => `${kind.verb}: ${done} of ${parts} ${kind.noun}`

/** Store the plan (and its bytes) and queue one message per part; the job stays running until the merge. */
async function fanOut(
  deps: AnalysisJobDeps,
  running: AnalysisJobRecord,
  plan: FanoutPlan,
  data: Uint8Array | null = null
): Promise<void> {
  const kind = fanoutKind(running)
  const parts = plan.bounds.length - 1
  if (data) await deps.objects.put(analysisLayout.planData(running.tenant, running.id), data)
  await deps.objects.put(analysisLayout.plan(running.tenant, running.id), JSON.stringify(plan), {
    contentType: 'application/json'
  })
  await putJob(deps.objects, {
    ...running,
    progress: { fraction: BLOCKS_START, phase: partsPhase(kind, 0, parts) },
    updatedAt: nowIso(deps)
  })
  for (let part = 0; part < parts; part++)
    await deps.queue.send({ kind: 'analysis-part', tenant: running.tenant, jobId: running.id, part, parts })
  // Last: a redelivered job message before this point plans and sends again (duplicate parts only skip).
  await deps.objects.put(analysisLayout.fannedOut(running.tenant, running.id), String(parts))
  deps.log?.(`[analysis ${running.id}] fanned out in ${parts} ${kind.noun}`)
}

const jobQuery = (record: AnalysisJobRecord) => correlationsQuery({ ...record.request, dataset: record.dataset })

/** The job of a part or merge message, with its plan; null when there is nothing (more) to do. */
async function fannedOutJob(
  deps: AnalysisJobDeps,
  message: AnalysisPartMessage | AnalysisMergeMessage
): Promise<{ record: AnalysisJobRecord; plan: FanoutPlan; data: Uint8Array | null; kind: FanoutKind } | null> {
  const record = await getJob(deps.objects, message.tenant, message.jobId)
  if (record?.status !== 'running') {
    deps.log?.(`[analysis ${message.jobId}] ${message.kind}: job ${record?.status ?? 'unknown'}, nothing to do`)
    return null
  }
  const bytes = await deps.objects.get(analysisLayout.plan(message.tenant, message.jobId))
  if (!bytes) throw new Error(`the plan of job ${message.jobId} is missing`)
  const data = await deps.objects.get(analysisLayout.planData(message.tenant, message.jobId))
  return { record, plan: JSON.parse(text.decode(bytes)) as FanoutPlan, data, kind: fanoutKind(record) }
}

/** Run one part (unless its partial is stored: a redelivery), record progress, and queue the merge after the last. */
async function runAnalysisPart(
  deps: AnalysisJobDeps,
  message: AnalysisPartMessage,
  signal?: AbortSignal
): Promise<void> {
  const job = await fannedOutJob(deps, message)
  if (!job) return
  const { tenant, jobId, part, parts } = message
  const key = analysisLayout.partial(tenant, jobId, part)
  const noun = job.kind.noun.replace(/s$/, '')
  if ((await deps.objects.head(key)) === null) {
    const started = performance.now()
    try {
      const ctx = contextFor(deps, job.record, signal, () => {})
      await deps.objects.put(key, await job.kind.part(ctx, job.record, job.plan, job.data, part))
    } catch (err) {
      return attemptFailed(deps, job.record, err)
    }
    deps.log?.(
      `[analysis ${jobId}] ${noun} ${part + 1} of ${parts} in ${((performance.now() - started) / 1000).toFixed(2)} s`
    )
  }
  // A part never writes the job record: a merge that finished meanwhile (another part was last) would be undone by a
  // stale "running". Progress while the parts run is counted from their partials when the job is read (liveProgress).
  const done = await partialsStored(deps.objects, tenant, jobId)
  if (done < parts) return
  // One merge message: the part that creates the marker sends it (a duplicate would be harmless, only wasted).
  try {
    await deps.objects.put(analysisLayout.mergeQueued(tenant, jobId), String(part), { ifNoneMatch: true })
  } catch (err) {
    if ((err as Error).name === 'PreconditionFailedError') return
    throw err
  }
  await deps.queue.send({ kind: 'analysis-merge', tenant, jobId })
}

async function partialsStored(objects: ObjectStore, tenant: string, jobId: string): Promise<number> {
  return (await objects.list(analysisLayout.parts(tenant, jobId))).filter(o => /\/partial-\d+\.bin$/.test(o.key)).length
}

/**
 * The job as GET /jobs/:id shows it: a running job whose parts are out gets its progress from the partials stored so
 * far (the parts do not write the record); any other job as stored.
 */
export async function liveProgress(objects: ObjectStore, record: AnalysisJobRecord): Promise<AnalysisJobRecord> {
  const kind = FANOUT[record.analysis]
  if (record.status !== 'running' || !kind) return record
  const marker = await objects.get(analysisLayout.fannedOut(record.tenant, record.id))
  const parts = marker ? Number(text.decode(marker)) : NaN
  if (!(parts > 0)) return record
  const done = Math.min(parts, await partialsStored(objects, record.tenant, record.id))
  return {
    ...record,
    progress: { fraction: BLOCKS_START + (BLOCKS_SHARE * done) / parts, phase: partsPhase(kind, done, parts) }
  }
}

/** Merge every part's partial into the job's result (once: a ready job is left alone). */
async function runAnalysisMerge(
  deps: AnalysisJobDeps,
  message: AnalysisMergeMessage,
  signal?: AbortSignal
): Promise<void> {
  const job = await fannedOutJob(deps, message)
  if (!job) return
  const { record, plan } = job
  const parts = plan.bounds.length - 1
  const noun = job.kind.noun.replace(/s$/, '')
  let result: unknown
  try {
    const partials: Uint8Array[] = []
    for (let part = 0; part < parts; part++) {
      const bytes = await deps.objects.get(analysisLayout.partial(record.tenant, record.id, part))
      if (!bytes) throw new Error(`${noun} ${part} of job ${record.id} has no partial yet`)
      partials.push(bytes)
    }
    const ctx = contextFor(deps, record, signal, () => {})
    result = await job.kind.merge(ctx, record, plan, job.data, partials)
  } catch (err) {
    return attemptFailed(deps, record, err)
  }
  await completeJob(deps, record, result)
  deps.log?.(`[analysis ${record.id}] ${parts} ${job.kind.noun} merged: ready`)
}

export async function failJob(
  deps: Pick<AnalysisJobDeps, 'objects' | 'queue' | 'log' | 'now'>,
  record: AnalysisJobRecord,
  code: string,
  message: string
): Promise<void> {
  const failed: AnalysisJobRecord = { ...record, status: 'failed', error: { code, message }, updatedAt: nowIso(deps) }
  await putJob(deps.objects, failed)
  deps.log?.(`[analysis ${record.id}] failed: ${code}: ${message}`)
  await queueAnalysisEvent(deps, failed, 'analysis.failed')
}

/** Called when a message used up its receives: the job is failed, never left running. */
export async function onAnalysisDeadLetter(
  deps: Pick<AnalysisJobDeps, 'objects' | 'queue' | 'log' | 'now'>,
  message: AnalysisQueueMessage,
  reason: string
): Promise<void> {
  if (message.kind === 'webhook') {
    deps.log?.(`[analysis webhook ${message.jobId ?? message.datasetId}] dead-lettered: ${reason}`)
    return
  }
  const record = await getJob(deps.objects, message.tenant, message.jobId)
  if (!record || record.status === 'ready' || record.status === 'failed') return
  await failJob(
    deps,
    record,
    'retries-exhausted',
    `the analysis failed repeatedly and was given up (${reason})${record.lastAttemptError ? `; last error: ${record.lastAttemptError}` : ''}`
  )
}

async function queueAnalysisEvent(
  deps: Pick<AnalysisJobDeps, 'queue'>,
  record: AnalysisJobRecord,
  type: 'analysis.ready' | 'analysis.failed'
): Promise<void> {
  if (!record.webhook) return
  const event: WebhookEvent = { type, timestamp: record.updatedAt, data: toJobView(record) }
  await deps.queue.send({
    kind: 'webhook',
    tenant: record.tenant,
    datasetId: record.dataset,
    jobId: record.id,
    event: type,
    messageId: `msg_${record.id}_${type}_${record.attempts}`,
    body: JSON.stringify(event),
    timestamp: Math.floor(Date.now() / 1000),
    attempt: 0
  })
}

/** One delivery attempt of an analysis event; retries are re-queued with the Standard Webhooks schedule. */
async function handleAnalysisWebhook(deps: AnalysisJobDeps, job: WebhookJob): Promise<void> {
  const log = (line: string) => deps.log?.(`[analysis webhook ${job.jobId}] ${line}`)
  await deliverQueuedWebhook(
    { queue: deps.queue, fetch: deps.fetch, log },
    job,
    async () => (job.jobId ? await getJob(deps.objects, job.tenant, job.jobId) : null)?.webhook,
    'job unknown or without webhook: dropped'
  )
}

export async function handleAnalysisMessage(deps: AnalysisJobDeps, body: unknown, signal?: AbortSignal): Promise<void> {
  const message = AnalysisQueueMessage.parse(body)
  if (message.kind === 'analysis') return runAnalysisJob(deps, message, signal)
  if (message.kind === 'analysis-part') return runAnalysisPart(deps, message, signal)
  if (message.kind === 'analysis-merge') return runAnalysisMerge(deps, message, signal)
  return handleAnalysisWebhook(deps, message)
}

/** The receive loop of an analysis consumer (local process, container or Lambda-style poller); resolves once `signal` stops it. */
export function startAnalysisConsumer(
  deps: AnalysisJobDeps,
  options: Omit<ConsumerOptions<AnalysisQueueMessage>, 'signal'> & { signal: AbortSignal }
): Promise<void> {
  return runConsumer(deps.queue, message => handleAnalysisMessage(deps, message.body, options.signal), {
    concurrency: 1,
    visibilitySeconds: 120,
    heartbeatSeconds: 30,
    onError: err => deps.log?.(`[analysis] job failed, will be retried: ${(err as Error).stack ?? err}`),
    ...options
  })
}
