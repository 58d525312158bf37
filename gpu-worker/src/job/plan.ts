/** @module The plan step of an encoding: read the source once, keep the documents that can be pooled, stage them as parts. */
import { sourceSpecProblem, type DatasetRecord, type SourceSpec } from '@latentbase/shared/contract/dataset'
import { mulberry32 } from '@latentbase/shared/util/random'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { DatasetDeletedError } from '@latentbase/shared/store/dataset-store'
import { EncodePlan, type EncodePart } from '@latentbase/shared/contract/encode-plan'
import { readPlan } from '@latentbase/shared/store/encode-progress'
import { readSourceDocuments, type SourceDocument } from '../ingest/records.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import {
  failIfDeleted,
  JSON_TYPE,
  JSONL,
  PermanentJobError,
  poolRolesOf,
  type EncodeOptions
} from './encode-options.ts'

/**
 * Planning: read the source once, tokenize each document to decide whether it can be pooled (so that rows are
 * contiguous however the parts are spread), stage the documents as part inputs of at most partDocuments documents
 * and partTokens tokens, and write the plan. Idempotent: a plan already written is returned as is.
 */
export function planEncode(record: DatasetRecord, opts: EncodeOptions): Promise<EncodePlan> {
  return failIfDeleted(record, opts.datasets, () => planParts(record, opts))
}

async function planParts(record: DatasetRecord, opts: EncodeOptions): Promise<EncodePlan> {
  const { objects, datasets, encoder } = opts
  const existing = await readPlan(objects, record)
  if (existing) return existing
  const log = opts.log ?? (() => {})
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  const partDocuments = opts.partDocuments ?? 65_536
  const rowOffset = opts.rowOffset ?? 0
  const partTokens = opts.partTokens ?? 2 ** 20
  const context = { ...encoder.prepareContext, poolRoles: poolRolesOf(record) }
  const skipped: Record<string, number> = {}
  const parts: EncodePart[] = []
  let lines: string[] = []
  let lineTokens = 0
  let documents = 0
  let tokens = 0
  const flush = async () => {
    if (lines.length === 0) return
    if (await datasets.isTombstoned(record.tenant, record.id)) throw new DatasetDeletedError(record.tenant, record.id)
    await objects.put(prefix + layout.partInput(parts.length), lines.join('\n') + '\n', JSONL)
    parts.push({ docStart: rowOffset + documents - lines.length, docCount: lines.length, tokens: lineTokens })
    lines = []
    lineTokens = 0
  }
  const spec = 'inline' in record.source ? null : (record.source as SourceSpec)
  const problem = spec && sourceSpecProblem(spec)
  if (problem) throw new PermanentJobError('invalid-source', problem)
  const maxDocuments = spec?.maxDocuments ?? Number.POSITIVE_INFINITY
  // A seeded reservoir (Algorithm R) over the usable documents: uniform over the whole source, whatever its order.
  const sample =
    spec?.sampleSeed !== undefined
      ? { rand: mulberry32(spec.sampleSeed), seen: 0, kept: [] as Array<{ seq: number; line: string; tokens: number }> }
      : null
  const keep = async (line: string, tokenCount: number) => {
    lines.push(line)
    documents++
    tokens += tokenCount
    lineTokens += tokenCount
    if (lines.length >= partDocuments || lineTokens >= partTokens) await flush()
  }
  const source: AsyncIterable<SourceDocument | { skip: string }> =
    'inline' in record.source
      ? readInlineDocuments(objects, layout.inlineInput(record.tenant, record.id))
      : readSourceDocuments(record.source as SourceSpec, {
          allowLocal: opts.allowLocalSources,
          signal: opts.signal,
          guard: opts.sourceGuard,
          uploads: { objects, tenant: record.tenant },
          log
        })
  for await (const item of source) {
    opts.signal?.throwIfAborted()
    if ('skip' in item) {
      skipped[item.skip] = (skipped[item.skip] ?? 0) + 1
      continue
    }
    let prep: PreparedDocument
    try {
      prep = prepareDocument(item, context)
    } catch (err) {
      skipped['tokenizer-error'] = (skipped['tokenizer-error'] ?? 0) + 1
      log(`skipped document ${item.id}: ${(err as Error).message}`)
      continue
    }
    if (prep.pooledTokens === 0) {
      skipped['nothing-to-pool'] = (skipped['nothing-to-pool'] ?? 0) + 1
      continue
    }
    const line = JSON.stringify({
      id: item.id,
      ...(item.text !== undefined ? { text: item.text } : {}),
      ...(item.messages ? { messages: item.messages } : {}),
      metadata: item.metadata ?? {}
    })
    if (sample) {
      const seq = sample.seen++
      const at = sample.kept.length < maxDocuments ? sample.kept.length : Math.floor(sample.rand() * (seq + 1))
      if (at < maxDocuments) sample.kept[at] = { seq, line, tokens: prep.tokenCount }
      continue
    }
    await keep(line, prep.tokenCount)
    // The first maxDocuments: leaving the loop closes the source, so the rest is never downloaded.
    if (documents >= maxDocuments) break
  }
  if (sample) {
    sample.kept.sort((a, b) => a.seq - b.seq)
    for (const k of sample.kept) await keep(k.line, k.tokens)
    if (sample.seen > sample.kept.length) skipped['not-sampled'] = sample.seen - sample.kept.length
    log(`sampled ${sample.kept.length} of ${sample.seen} usable documents (seed ${spec!.sampleSeed})`)
  }
  await flush()
  if (documents === 0) {
    const reasons = Object.entries(skipped)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')
    throw new PermanentJobError(
      'no-documents',
      `the source has no usable documents${reasons ? ` (skipped: ${reasons})` : ''}`
    )
  }
  const plan: EncodePlan = {
    tenant: record.tenant,
    datasetId: record.id,
    startedAt,
    documents,
    tokens,
    skipped,
    parts,
    seconds: (performance.now() - started) / 1000
  }
  await objects.put(prefix + layout.encodePlan(), JSON.stringify(EncodePlan.parse(plan)), JSON_TYPE)
  log(`planned ${documents} documents, ${tokens} tokens in ${parts.length} part(s)`)
  return plan
}

async function* readInlineDocuments(
  objects: ObjectStore,
  key: string
): AsyncIterable<SourceDocument | { skip: string }> {
  const bytes = await objects.get(key)
  if (!bytes)
    throw new PermanentJobError('input-missing', 'the inline documents of this dataset are missing from the store')
  const lines = new TextDecoder().decode(bytes).split('\n')
  let i = 0
  for (const line of lines) {
    if (!line) continue
    const d = JSON.parse(line) as {
      id?: string
      text?: string
      messages?: Array<{ role: string; content: string }>
      metadata?: Record<string, unknown>
    }
    yield {
      id: d.id ?? String(i),
      ...(d.text !== undefined ? { text: d.text } : {}),
      ...(d.messages ? { messages: d.messages } : {}),
      metadata: d.metadata ?? {}
    }
    i++
  }
}
