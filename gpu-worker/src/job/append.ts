/**
 * @module Appending a batch to a ready dataset as a new version. The batch is planned, encoded and finalized by the
 * same steps as a new dataset, into versions/NNNNN/ (a VersionScopedStore) with rows continuing the dataset's
 * numbering; then the dataset's manifest as of the new version (every version's files, merged statistics and top
 * examples) is committed by switching manifest.json. Until that switch the previous version is what everyone reads;
 * a failed append says why in record.append and leaves it so. When the dataset carries a watch, the new batch is
 * diffed against the baseline batch and a signed dataset.drift webhook says which latents moved (or that none did).
 */
import type { AppendState, DatasetRecord, DatasetStats } from '@latentbase/shared/contract/dataset'
import type { EncodeJob, EncodePartJob } from '@latentbase/shared/contract/job'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { DriftReport } from '@latentbase/shared/contract/drift'
import type { WebhookEvent } from '@latentbase/shared/contract/webhook'
import { FinalizeClaim } from '@latentbase/shared/contract/encode-plan'
import { DatasetDeletedError, DatasetStore } from '@latentbase/shared/store/dataset-store'
import { PreconditionFailedError, type ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { markPartsQueued, partsQueued, readPlan } from '@latentbase/shared/store/encode-progress'
import { mergeStats } from '@latentbase/shared/analysis/latent-stats'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { writeLatentP90, writeLatentStats } from '@latentbase/shared/store/stats/write'
import { readFacets, writeFacets } from '@latentbase/shared/store/stats/facets'
import { mergeFacets } from '@latentbase/shared/analysis/facets'
import {
  commitVersion,
  versionInfos,
  versionLayout,
  versionOf,
  versionsOf,
  VersionScopedStore
} from '@latentbase/shared/store/versions'
import { detectDrift } from '@latentbase/shared/analysis/drift'
import { datasetFingerprint, type LoadedEncoder } from '../encode/runtime.ts'
import { finishedParts, isPermanent, PermanentJobError, readPartMarker, type EncodeOptions } from './encode-options.ts'
import { planEncode } from './plan.ts'
import { encodePart } from './part.ts'
import { finalizeEncode } from './finalize.ts'
import { sweepBookkeeping } from './sweep.ts'
import { readExampleRows } from './example-capture.ts'
import { emptyTopExampleColumns, pushTopExampleRow } from '@latentbase/shared/store/top-examples/columns'
import { writeTopExamples } from '@latentbase/shared/store/top-examples/write'
import type { Delivery, WorkerDeps } from './handler.ts'

type AppendJob = EncodeJob & { version: number }
type AppendPartJob = EncodePartJob & { version: number }

/** What one append job works on: the record, its pending batch, and the batch's view of the store. */
interface Batch {
  record: DatasetRecord
  append: AppendState
  version: number
  /** The record as the encode steps see the batch: its source, its pool roles. */
  batchRecord: DatasetRecord
  objects: VersionScopedStore
  datasets: DatasetStore
}

/** The pending batch of this job, or null (with the reason logged) when there is nothing to do. */
async function loadBatch(
  job: { tenant: string; datasetId: string; version: number },
  deps: WorkerDeps,
  log: (line: string) => void
): Promise<Batch | null> {
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record) {
    log('dataset deleted or unknown: nothing to do')
    return null
  }
  const append = record.append
  if ((record.version ?? 1) >= job.version) {
    log(`version ${job.version} already committed (duplicate delivery)`)
    return null
  }
  if (!append || append.version !== job.version) {
    log(`no pending append of version ${job.version}: dropped`)
    return null
  }
  if (append.status === 'failed') {
    log('append failed: dropped')
    return null
  }
  const objects = new VersionScopedStore(deps.objects, job.tenant, job.datasetId, job.version)
  const { append: _a, ...rest } = record
  const batchRecord: DatasetRecord = {
    ...rest,
    source: append.source,
    ...(append.poolRoles ? { poolRoles: append.poolRoles } : {})
  }
  return { record, append, version: job.version, batchRecord, objects, datasets: new DatasetStore(objects) }
}

function batchOptions(
  deps: WorkerDeps,
  b: Batch,
  encoder: LoadedEncoder,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
  rowOffset: number
): EncodeOptions {
  return {
    allowLocalSources: deps.allowLocalSources,
    signal,
    log,
    ...deps.encodeOptions,
    objects: b.objects,
    datasets: b.datasets,
    encoder,
    rowOffset
  }
}

/** The encoder's fingerprint for this dataset, or why it cannot encode a batch of it. */
function checkEncoder(encoder: LoadedEncoder | undefined, record: DatasetRecord, latest: Manifest): LoadedEncoder {
  if (!encoder)
    throw new PermanentJobError(
      'encoder-missing',
      `encoder "${record.encoder}" is not loaded on this worker: the batch cannot be encoded like the dataset`
    )
  const fingerprint = datasetFingerprint(
    encoder.baseFingerprint,
    record.pooling,
    encoder.info.maxTokens,
    encoder.config.reader.longDocuments
  )
  if (fingerprint !== latest.encoderFingerprint) {
    throw new PermanentJobError(
      'encoder-mismatch',
      `encoder "${record.encoder}" changed since the dataset was encoded (fingerprint ${fingerprint.slice(0, 12)}, dataset ${latest.encoderFingerprint.slice(0, 12)}): a batch must be encoded by the same encoder`
    )
  }
  return encoder
}

/** Plan the batch of version N and queue its parts (the append's counterpart of the encode job). */
export async function handleAppend(job: AppendJob, deps: WorkerDeps, signal?: AbortSignal): Promise<void> {
  const log = (line: string) => deps.log?.(`[append ${job.datasetId} v${job.version}] ${line}`)
  const b = await loadBatch(job, deps, log)
  if (!b) return
  if (await b.datasets.getManifest(job.tenant, job.datasetId)) {
    log('batch already committed: finishing')
    return finishAppend(deps, b, log)
  }
  if (b.append.status === 'running' && (await partsQueued(b.objects, b.record))) {
    log('already planned and queued (duplicate delivery)')
    return
  }
  await deps.datasets.putRecord({
    ...b.record,
    append: { ...b.append, status: 'running' },
    updatedAt: new Date().toISOString()
  })
  try {
    const latest = await deps.datasets.getManifest(job.tenant, job.datasetId)
    if (!latest) throw new PermanentJobError('dataset-not-ready', 'the dataset has no committed version to append to')
    const encoder = checkEncoder(await deps.encoder(b.record.encoder), b.record, latest)
    const plan = await planEncode(b.batchRecord, batchOptions(deps, b, encoder, signal, log, latest.documents.count))
    const done = await finishedParts(b.objects, b.record)
    for (let part = 0; part < plan.parts.length; part++) {
      if (!done.has(part))
        await deps.queue.send({
          kind: 'encode-part',
          tenant: job.tenant,
          datasetId: job.datasetId,
          part,
          version: job.version
        })
    }
    await markPartsQueued(b.objects, b.record)
    log(
      `planned ${plan.documents} documents from row ${latest.documents.count}; queued ${plan.parts.length - done.size} part(s)`
    )
  } catch (err) {
    if (err instanceof DatasetDeletedError) {
      log('deleted while planning: dropped')
      return
    }
    if (isPermanent(err)) return failAppend(deps, job, err.code, err.message)
    throw err
  }
}

/** Encode one part of the batch; the part job that takes the finalize claim commits the version. */
export async function handleAppendPart(
  job: AppendPartJob,
  deps: WorkerDeps,
  signal?: AbortSignal,
  delivery?: Delivery
): Promise<void> {
  const log = (line: string) => deps.log?.(`[append ${job.datasetId} v${job.version} part ${job.part}] ${line}`)
  const b = await loadBatch(job, deps, log)
  if (!b) return
  const prefix = layout.datasetPrefix(job.tenant, job.datasetId)
  try {
    if (await b.datasets.getManifest(job.tenant, job.datasetId)) return await finishAppend(deps, b, log)
    const plan = await readPlan(b.objects, b.record)
    if (!plan) throw new Error('the batch has no plan yet')
    const latest = await deps.datasets.getManifest(job.tenant, job.datasetId)
    if (!latest) throw new PermanentJobError('dataset-not-ready', 'the dataset has no committed version to append to')
    const encoder = checkEncoder(await deps.encoder(b.record.encoder), b.record, latest)
    const options = batchOptions(deps, b, encoder, signal, log, plan.parts[0].docStart)
    if (!(await readPartMarker(b.objects, b.record, job.part))) {
      await encodePart(b.batchRecord, plan, job.part, { ...options, receiveCount: delivery?.receiveCount ?? 1 })
    }
    if ((await finishedParts(b.objects, b.record)).size < plan.parts.length) return
    try {
      await b.objects.put(prefix + layout.finalizeClaim(), JSON.stringify({ part: job.part }), {
        ifNoneMatch: true,
        contentType: 'application/json'
      })
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err
      const owner = await b.objects.get(prefix + layout.finalizeClaim())
      if (owner && FinalizeClaim.parse(JSON.parse(new TextDecoder().decode(owner))).part !== job.part) {
        log('another part job finalizes')
        return
      }
    }
    log('every part done: finalizing the batch')
    await finalizeEncode(b.batchRecord, plan, options)
    await finishAppend(deps, b, log)
  } catch (err) {
    if (err instanceof DatasetDeletedError) {
      log('deleted while encoding: dropped')
      return
    }
    if (isPermanent(err)) return failAppend(deps, job, err.code, err.message)
    await b.objects
      .put(prefix + layout.partError(job.part), JSON.stringify({ message: (err as Error).message }))
      .catch(() => {})
    throw err
  }
}

/**
 * The batch is committed in its folder: build the dataset's manifest as of this version and switch to it, then say
 * so (record, dataset.version and dataset.drift events) and sweep the batch's bookkeeping. Idempotent.
 */
async function finishAppend(deps: WorkerDeps, b: Batch, log: (line: string) => void): Promise<void> {
  const { tenant, id } = b.record
  const prefix = layout.datasetPrefix(tenant, id)
  const batch = (await b.datasets.getManifest(tenant, id))!
  let latest = (await deps.datasets.getManifest(tenant, id))!
  if (versionOf(latest) < b.version) {
    if (versionOf(latest) !== b.version - 1)
      throw new PermanentJobError(
        'version-conflict',
        `the dataset is at version ${versionOf(latest)}; version ${b.version} cannot follow it`
      )
    if (batch.encoderFingerprint !== latest.encoderFingerprint)
      throw new PermanentJobError(
        'encoder-mismatch',
        'the batch was encoded with another encoder fingerprint than the dataset'
      )
    const manifest = await datasetManifestWith(deps.objects, prefix, latest, batch, b)
    await commitVersion(deps.datasets, manifest, latest)
    log(`committed version ${b.version}: ${manifest.documents.count} documents`)
    latest = manifest
  }
  await markVersionReady(deps, b, latest, log)
  await sweepBookkeeping(b.objects, b.record)
}

/** The manifest of the dataset with the batch appended: files concatenated (rows were continued), statistics merged. */
async function datasetManifestWith(
  objects: ObjectStore,
  prefix: string,
  previous: Manifest,
  batch: Manifest,
  b: Batch
): Promise<Manifest> {
  const v = b.version
  const dir = versionLayout.dir(v)
  const moved = <T extends { key: string }>(f: T): T => ({ ...f, key: dir + f.key })
  const stats = mergeStats(
    await readLatentStats(objects, prefix + previous.stats.key),
    await readLatentStats(objects, prefix + dir + batch.stats.key)
  )
  const statsKey = versionLayout.datasetStats(v)
  const p90Key = versionLayout.datasetP90(v)
  await objects.put(prefix + statsKey, writeLatentStats(stats))
  await objects.put(prefix + p90Key, writeLatentP90(stats))
  let topExamples: Manifest['topExamples']
  if (previous.topExamples && batch.topExamples) {
    const perLatent = Math.min(previous.topExamples.perLatent, batch.topExamples.perLatent)
    const parts = await Promise.all(
      [prefix + previous.topExamples.key, prefix + dir + batch.topExamples.key].map(k => objects.get(k))
    )
    if (parts.every(p => p)) {
      const key = versionLayout.datasetTopExamples(v)
      await objects.put(prefix + key, await mergeTopExamples(parts as Uint8Array[], perLatent))
      topExamples = { key, perLatent }
    }
  }
  let facets: Manifest['facets']
  if (previous.facets && batch.facets) {
    const merged = mergeFacets(
      await readFacets(objects, prefix + previous.facets.key),
      await readFacets(objects, prefix + dir + batch.facets.key)
    )
    const key = versionLayout.datasetFacets(v)
    await objects.put(prefix + key, writeFacets(merged))
    facets = { key, fields: merged.fields.map(f => f.key) }
  }
  let activeLatents = 0
  for (let s = 0; s < stats.nLatents; s++) if (stats.docCount[s] > 0) activeLatents++
  const documents = previous.documents.count + batch.documents.count
  const tokens = previous.documents.tokens + batch.documents.tokens
  const nnz = previous.latents.nnz + batch.latents.nnz
  const p = previous.summary as unknown as DatasetStats
  const q = batch.summary as unknown as DatasetStats
  const skipped = { ...p.skipped }
  for (const [k, n] of Object.entries(q.skipped ?? {})) skipped[k] = (skipped[k] ?? 0) + n
  const summary: DatasetStats = {
    documents,
    tokens,
    meanTokens: tokens / documents,
    truncated: p.truncated + q.truncated,
    skipped,
    maskedTokens: {
      special: p.maskedTokens.special + q.maskedTokens.special,
      outlier: p.maskedTokens.outlier + q.maskedTokens.outlier,
      role: p.maskedTokens.role + q.maskedTokens.role
    },
    activeLatents,
    meanActivePerDocument: nnz / documents
  }
  // Facets and top examples of the previous version alone would be stale: each is merged above, or left out.
  const { topExamples: _t, facets: _f, ...base } = previous
  return {
    ...base,
    documents: { count: documents, tokens, files: [...previous.documents.files, ...batch.documents.files.map(moved)] },
    latents: {
      nnz,
      byDocument: [...previous.latents.byDocument, ...batch.latents.byDocument.map(moved)],
      byLatent: [...previous.latents.byLatent, ...batch.latents.byLatent.map(moved)]
    },
    stats: { key: statsKey, histogramEdges: previous.stats.histogramEdges, p90Key },
    ...(topExamples ? { topExamples } : {}),
    ...(facets ? { facets } : {}),
    summary: summary as unknown as Record<string, unknown>,
    version: v,
    versions: [
      ...versionsOf(previous),
      {
        version: v,
        documents: { start: previous.documents.count, count: batch.documents.count },
        tokens: batch.documents.tokens,
        createdAt: b.append.createdAt,
        dir,
        statsKey: dir + batch.stats.key
      }
    ]
  }
}

/**
 * Two top-example files merged: each latent's top `perLatent` of their union (value desc, ties to the lower row, as
 * the statistics merge). Each file holds its own top lists, so the union's top lists are among them.
 */
export async function mergeTopExamples(files: Uint8Array[], perLatent: number): Promise<Uint8Array> {
  const rows = await readExampleRows(files, 'value')
  const out = emptyTopExampleColumns()
  let rank = 0
  for (let i = 0; i < rows.length; i++) {
    rank = i > 0 && Number(rows[i - 1].latent) === Number(rows[i].latent) ? rank + 1 : 0
    if (rank < perLatent) pushTopExampleRow(out, rows[i], rank)
  }
  return writeTopExamples(out)
}

/** The record says the new version (once), after its events: dataset.version, and dataset.drift when watched. */
async function markVersionReady(
  deps: WorkerDeps,
  b: Batch,
  manifest: Manifest,
  log: (line: string) => void
): Promise<void> {
  const record = (await deps.datasets.getRecord(b.record.tenant, b.record.id)) ?? b.record
  if ((record.version ?? 1) >= b.version) return
  const summary = manifest.summary as unknown as DatasetStats
  const { append: _done, ...rest } = record
  const ready: DatasetRecord = {
    ...rest,
    version: b.version,
    versions: versionInfos(manifest),
    stats: summary,
    updatedAt: new Date().toISOString(),
    progress: { documents: { done: summary.documents, total: summary.documents }, tokens: summary.tokens }
  }
  if (ready.webhook) {
    await sendEvent(deps, ready, 'dataset.version', `v${b.version}`)
    if (ready.watch) {
      const drift = await driftOf(deps, ready, manifest, b.version, log)
      if (drift) await sendEvent(deps, ready, 'dataset.drift', `v${b.version}`, { drift })
    }
  }
  await deps.datasets.putRecord(ready)
}

/** The watch's diff of version v's batch against its baseline batch, or null when the baseline does not exist. */
export async function driftOf(
  deps: Pick<WorkerDeps, 'objects' | 'encoder'>,
  record: DatasetRecord,
  manifest: Manifest,
  v: number,
  log: (line: string) => void
): Promise<DriftReport | null> {
  const watch = record.watch!
  const baseline = watch.against === 'previous' ? v - 1 : watch.against
  const versions = versionsOf(manifest)
  const now = versions.find(x => x.version === v)
  const base = versions.find(x => x.version === baseline)
  if (!now || !base || baseline >= v) {
    log(`watch: no baseline version ${baseline} before version ${v}: no drift report`)
    return null
  }
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  const [a, bStats] = await Promise.all(
    [now, base].map(x => readLatentStats(deps.objects, prefix + x.statsKey, ['doc_count']))
  )
  const labels = (await deps.encoder(record.encoder))?.labels ?? []
  const out = detectDrift({
    batch: { id: `${record.id}@${v}`, documents: now.documents.count, counts: a.docCount },
    baseline: { id: `${record.id}@${baseline}`, documents: base.documents.count, counts: bStats.docCount },
    watch,
    labels
  })
  log(`watch: ${out.moved.length} of ${out.tested} latents moved against version ${baseline}`)
  return {
    dataset: record.id,
    version: v,
    baseline,
    documents: { version: now.documents.count, baseline: base.documents.count },
    watch,
    tested: out.tested,
    moved: out.moved
  }
}

/** Queue a signed event for the dataset's webhook under a stable message id (receivers deduplicate redeliveries). */
async function sendEvent(
  deps: Pick<WorkerDeps, 'queue'>,
  record: DatasetRecord,
  type: WebhookEvent['type'],
  tag: string,
  extra: Record<string, unknown> = {}
): Promise<void> {
  if (!record.webhook) return
  const { webhook, tenant, ...view } = record
  const event = { type, timestamp: record.updatedAt, data: { ...view, webhook: { url: webhook.url }, ...extra } }
  await deps.queue.send({
    kind: 'webhook',
    tenant,
    datasetId: record.id,
    event: type,
    messageId: `msg_${record.id}_${type}_${tag}`,
    body: JSON.stringify(event),
    timestamp: Math.floor(Date.now() / 1000),
    attempt: 0
  })
}

/** The append failed: record.append says why; the dataset stays ready on its previous version. */
export async function failAppend(
  deps: Pick<WorkerDeps, 'datasets' | 'queue' | 'log'>,
  job: { tenant: string; datasetId: string; version?: number },
  code: string,
  message: string
): Promise<void> {
  const record = await deps.datasets.getRecord(job.tenant, job.datasetId)
  if (!record?.append || record.append.version !== job.version || (record.version ?? 1) >= record.append.version) return
  const failed: DatasetRecord = {
    ...record,
    append: { ...record.append, status: 'failed', error: { code, message } },
    updatedAt: new Date().toISOString()
  }
  await deps.datasets.putRecord(failed)
  deps.log?.(`[append ${record.id} v${job.version}] failed: ${code}: ${message}`)
  await sendEvent(deps, failed, 'dataset.version-failed', `v${job.version}`)
}
