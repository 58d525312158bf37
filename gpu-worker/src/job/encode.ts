/**
 * @module The encode job in three steps that many workers can share: plan (source -> staged parts), encode a part
 * (tokens -> one fused reader+SAE+pooling graph per batch, which also returns the windows of top-example candidates
 * -> sparse shards, the part's top examples -> part marker), finalize (merged statistics, merged top examples ->
 * manifest, written once and last). Each document is read by the reader once.
 */
import type { DatasetRecord, DatasetStats } from '@latentbase/shared/contract/dataset'
import type { PooledCsr } from '@latentbase/shared/analysis/sparse'
import { finishedParts, type EncodeOptions, type EncodeResult } from './encode-options.ts'
import { planEncode } from './plan.ts'
import { encodePart } from './part.ts'
import { finalizeEncode } from './finalize.ts'
import { sweepBookkeeping } from './sweep.ts'

export {
  PermanentJobError,
  readPartMarker,
  finishedParts,
  isPermanent,
  type EncodeOptions,
  type EncodeResult
} from './encode-options.ts'
export { planEncode } from './plan.ts'
export { encodePart } from './part.ts'
export { finalizeEncode } from './finalize.ts'
export { sweepBookkeeping } from './sweep.ts'

/**
 * The whole encoding in this process: plan, every part not yet done, finalize, sweep. What tests, benchmarks and
 * evaluations use; the queue handler spreads the same steps over workers.
 */
export async function encodeDataset(record: DatasetRecord, opts: EncodeOptions): Promise<EncodeResult> {
  const committed = await opts.datasets.getManifest(record.tenant, record.id)
  if (committed) {
    // Committed by an earlier run that may have died before its sweep.
    await sweepBookkeeping(opts.objects, record)
    return { manifest: committed, stats: committed.summary as unknown as DatasetStats }
  }
  const plan = await planEncode(record, opts)
  const done = await finishedParts(opts.objects, record)
  for (let p = 0; p < plan.parts.length; p++) if (!done.has(p)) await encodePart(record, plan, p, opts)
  const result = await finalizeEncode(record, plan, opts)
  await sweepBookkeeping(opts.objects, record)
  return result
}

export type { PooledCsr }
