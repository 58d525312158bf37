/** @module Reading an encoding's bookkeeping: its plan, which parts are done, and a running dataset's progress as it stands. */
import type { DatasetRecord } from '../contract/dataset.ts'
import { EncodePlan, PartProgress } from '../contract/encode-plan.ts'
import type { ObjectStore } from './object-store.ts'
import { layout } from './layout.ts'

/** Running parts whose progress objects are read; beyond it they count as not started (one GET each). */
const MAX_PROGRESS_READS = 32

const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as unknown

/**
 * The record with its progress filled in from the store when the dataset is being encoded in parts: finished parts
 * count whole (as planned), running ones as far as their last progress object says. Other records come back as is.
 */
/** The plan of a dataset, or null before planning (or after the sweep that follows the commit). */
export async function readPlan(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<EncodePlan | null> {
  const bytes = await objects.get(layout.datasetPrefix(record.tenant, record.id) + layout.encodePlan())
  return bytes ? EncodePlan.parse(decode(bytes)) : null
}

/**
 * Whether the planner queued every part of the current plan. A planner killed between writing the plan (or the
 * record) and its last part message leaves no marker, so its redelivery queues the parts again instead of taking
 * itself for a duplicate and leaving the dataset running for ever.
 */
export async function partsQueued(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<boolean> {
  return (await objects.get(layout.datasetPrefix(record.tenant, record.id) + layout.partsQueued())) !== null
}

export async function markPartsQueued(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<void> {
  await objects.put(layout.datasetPrefix(record.tenant, record.id) + layout.partsQueued(), '{}', {
    contentType: 'application/json'
  })
}

/** From one listing: the parts with a completion marker, and those that have written progress. */
export async function listParts(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<{ done: Set<number>; reporting: number[] }> {
  const done = new Set<number>()
  const reporting: number[] = []
  for (const { key } of await objects.list(layout.datasetPrefix(record.tenant, record.id) + 'parts/')) {
    const m = /part-(\d+)\.(done|progress)\.json$/.exec(key)
    if (m?.[2] === 'done') done.add(Number(m[1]))
    else if (m) reporting.push(Number(m[1]))
  }
  return { done, reporting }
}

/**
 * The record with its progress filled in from the store when the dataset is being encoded in parts: finished parts
 * count whole (as planned), running ones as far as their last progress object says. Other records come back as is.
 */
export async function withLiveProgress(objects: ObjectStore, record: DatasetRecord): Promise<DatasetRecord> {
  if (record.status !== 'running' || !record.progress.parts) return record
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  const [plan, { done, reporting }] = await Promise.all([readPlan(objects, record), listParts(objects, record)])
  if (!plan) return record
  let documents = 0
  let tokens = 0
  for (const p of done) {
    documents += plan.parts[p]?.docCount ?? 0
    tokens += plan.parts[p]?.tokens ?? 0
  }
  const running = reporting.filter(p => !done.has(p)).slice(0, MAX_PROGRESS_READS)
  const progress = await Promise.all(
    running.map(async p => {
      const bytes = await objects.get(prefix + layout.partProgress(p)).catch(() => null)
      return bytes ? PartProgress.safeParse(decode(bytes)).data : undefined
    })
  )
  for (const p of progress)
    if (p) {
      documents += p.documents
      tokens += p.tokens
    }
  return {
    ...record,
    progress: {
      documents: { done: documents, total: plan.documents },
      tokens,
      parts: { done: done.size, total: plan.parts.length }
    }
  }
}
