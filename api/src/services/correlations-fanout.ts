/**
 * @module Correlations past one machine: whether a query fits one process, the plan of blocks of the pair triangle
 * when it does not, one block's count (every document streamed, only that block's rows of pairs kept), and the merge
 * of the blocks' partials into the same answer as computeCorrelations. No queue here: analysis-jobs.ts routes the
 * messages; the counting is pure (shared/analysis/cooccurrence-blocks).
 */
import type { CorrelationsQuery, CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { consideredLatents } from '@latentbase/shared/analysis/cooccurrence'
import {
  BlockCounter,
  decodePartial,
  encodePartial,
  mergePartials,
  planBlocks,
  type BlockPartial
} from '@latentbase/shared/analysis/cooccurrence-blocks'
import type { AnalysisContext } from './context.ts'
import {
  answerCorrelations,
  cooccurrenceOptions,
  correlationsCounts,
  countAndAnswer,
  openCorrelationsSource,
  type CorrelationsCounts,
  type CorrelationsSource,
  type Progress
} from './correlations-service.ts'

/** How correlations split: the memory one worker may give to counting, and a floor on the number of blocks. */
export interface CorrelationFanout {
  /** Bytes of counting state per worker (default 256 MB): the single counter's entries, or one block's accumulator. */
  budgetBytes: number
  /** At least this many blocks (default 1: split only past the budget). */
  minBlocks: number
}

export const DEFAULT_CORRELATION_BUDGET_MB = 256
/** Bytes the single counter keeps per considered entry (slot and position, and its transpose). */
export const COUNTER_ENTRY_BYTES = 16

/** LATENTBASE_CORRELATION_BUDGET_MB (default 256) and LATENTBASE_CORRELATION_BLOCKS (default 1). */
export function fanoutFromEnv(env: Record<string, string | undefined> = {}): CorrelationFanout {
  const mb = Number(env.LATENTBASE_CORRELATION_BUDGET_MB ?? DEFAULT_CORRELATION_BUDGET_MB)
  const blocks = Number(env.LATENTBASE_CORRELATION_BLOCKS ?? 1)
  if (!(mb > 0)) throw new RangeError(`LATENTBASE_CORRELATION_BUDGET_MB must be a positive number (got ${mb})`)
  if (!(Number.isInteger(blocks) && blocks >= 1))
    throw new RangeError(`LATENTBASE_CORRELATION_BLOCKS must be a whole number >= 1 (got ${blocks})`)
  return { budgetBytes: mb * 2 ** 20, minBlocks: blocks }
}

/** What every block and the merge share: the presence counts (so no part repeats a presence pass) and the blocks. */
export interface CorrelationsPlan {
  version: 1
  nDocs: number
  /** Block boundaries in considered-latent slots: [0, a1, ..., m]. */
  bounds: number[]
  docCount: number[]
  minValue: number[] | null
  /** When the job's counting began (ms since the epoch), for the answer's `seconds`. */
  startedAt: number
}

export type Planned = { result: CorrelationsResult } | { plan: CorrelationsPlan }

/**
 * Plan a correlations query: when the single counter's entries fit the budget (and no split is asked for), answer it
 * here as computeCorrelations does; when one block's accumulator holds the whole triangle within the budget, count
 * that block here (bounded memory, one pass); otherwise return the plan of blocks for the queue.
 */
export async function planCorrelations(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  fan: CorrelationFanout,
  report: Progress
): Promise<Planned> {
  const startedAt = Date.now()
  const started = performance.now()
  const src = await openCorrelationsSource(ctx, query)
  report(0, 'reading')
  const counts = await correlationsCounts(ctx, query, src, report)
  const options = cooccurrenceOptions(query, counts.minValue)
  const considered = consideredLatents(counts.docCount, src.nDocs, options)
  let entries = 0
  for (const l of considered) entries += counts.docCount[l]
  if (fan.minBlocks <= 1 && entries * COUNTER_ENTRY_BYTES <= fan.budgetBytes) {
    return { result: await countAndAnswer(ctx, query, src, counts, report, started) }
  }
  const bounds = Array.from(planBlocks(considered.length, fan.budgetBytes, fan.minBlocks))
  const plan: CorrelationsPlan = {
    version: 1,
    nDocs: src.nDocs,
    bounds,
    docCount: Array.from(counts.docCount),
    minValue: counts.minValue ? Array.from(counts.minValue) : null,
    startedAt
  }
  if (bounds.length > 2) return { plan }
  const partial = await countBlock(ctx, query, plan, 0, { src, counts, report })
  return { result: await mergeBlocks(ctx, query, plan, [partial], report) }
}

function countsOf(plan: CorrelationsPlan): CorrelationsCounts {
  return {
    docCount: Int32Array.from(plan.docCount),
    minValue: plan.minValue ? Float32Array.from(plan.minValue) : undefined
  }
}

/** Count block `block` of the plan over every document: its partial, as stored bytes. */
export async function countBlockBytes(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  plan: CorrelationsPlan,
  block: number
): Promise<Uint8Array> {
  return encodePartial(await countBlock(ctx, query, plan, block))
}

async function countBlock(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  plan: CorrelationsPlan,
  block: number,
  given: { src: CorrelationsSource; counts: CorrelationsCounts; report: Progress } | null = null
): Promise<BlockPartial> {
  if (!(block >= 0 && block + 1 < plan.bounds.length))
    throw new RangeError(`block ${block} is not one of the plan's ${plan.bounds.length - 1}`)
  const src = given?.src ?? (await openCorrelationsSource(ctx, query))
  const counts = given?.counts ?? countsOf(plan)
  if (src.nDocs !== plan.nDocs)
    throw new Error(`the plan counted ${plan.nDocs} documents, the dataset now reads ${src.nDocs}`)
  const counter = new BlockCounter(
    counts.docCount,
    src.nDocs,
    plan.bounds[block],
    plan.bounds[block + 1],
    cooccurrenceOptions(query, counts.minValue)
  )
  for (let c = 0; c < src.chunks.length; c++) {
    counter.add(await src.readChunk(src.chunks[c]))
    ctx.signal?.throwIfAborted()
    given?.report(0.3 + (0.6 * (c + 1)) / src.chunks.length, 'counting')
  }
  return counter.finish()
}

/** The answer from every block's partial: merged pairs, then labels, as computeCorrelations answers. */
export async function mergeBlocks(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  plan: CorrelationsPlan,
  partials: Array<BlockPartial | Uint8Array>,
  report: Progress = () => {}
): Promise<CorrelationsResult> {
  const counts = countsOf(plan)
  const merged = mergePartials(
    partials.map(p => (p instanceof Uint8Array ? decodePartial(p) : p)),
    counts.docCount,
    plan.nDocs,
    cooccurrenceOptions(query, counts.minValue)
  )
  const src = await openCorrelationsSource(ctx, query)
  // `seconds` counts from the plan: the answer's time is the job's counting, not this merge alone.
  const started = performance.now() - (Date.now() - plan.startedAt)
  return answerCorrelations(ctx, query, src.ds, merged, report, started)
}
