/** @module The evaluations' corpus encode: inline documents into a dataset with an encoder, or the dataset an earlier run left in the same store. */
import { createHash } from 'node:crypto'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { clearShardMetadataCache } from '@latentbase/shared/store/parquet/read'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { encodeDataset } from '@latentbase/gpu-worker/job/encode'

export interface InlineDataset {
  tenant: string
  id: string
  name: string
  docs: ReadonlyArray<{ id: string; text: string }>
}

/**
 * Encodes `spec.docs` into dataset `spec.id` (top examples off) and returns the seconds it took; with `reuse`, a store
 * that already holds a ready dataset encoded from exactly these documents is searched as it is (0 seconds), so an
 * evaluation can be rerun after a change to the analyses without encoding again.
 */
export async function encodeInline(
  objects: ObjectStore,
  datasets: DatasetStore,
  encoder: LoadedEncoder,
  spec: InlineDataset,
  reuse = false,
  log: (line: string) => void = () => {}
): Promise<number> {
  const inline = spec.docs.map(d => JSON.stringify({ id: d.id, text: d.text, metadata: {} })).join('\n') + '\n'
  // The job consumes its inline input: what was encoded is recorded apart, as a digest.
  const digestKey = `${spec.tenant}/eval-inputs/${spec.id}.sha256`
  const digest = createHash('sha256').update(inline).digest('hex')
  const previous = reuse ? await objects.get(digestKey) : null
  if (previous && new TextDecoder().decode(previous) === digest && (await datasets.getManifest(spec.tenant, spec.id))) {
    log(`reusing dataset "${spec.id}" encoded by an earlier run`)
    return 0
  }
  // An encode job does not redo a dataset it finished: an earlier run's dataset of the same id goes first.
  for (const o of await objects.list(layout.datasetPrefix(spec.tenant, spec.id))) await objects.delete(o.key)
  clearShardMetadataCache(objects)
  const key = layout.inlineInput(spec.tenant, spec.id)
  const now = new Date().toISOString()
  const record: DatasetRecord = {
    id: spec.id,
    tenant: spec.tenant,
    name: spec.name,
    status: 'running',
    encoder: encoder.info.id,
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: spec.docs.length },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: 0, total: spec.docs.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(key, inline)
  await datasets.putRecord(record)
  log(`encoding ${spec.docs.length} documents with ${encoder.info.id} ...`)
  const t0 = performance.now()
  await encodeDataset(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: false,
    topExamplesPerLatent: 0,
    log: () => {}
  })
  await datasets.putRecord({ ...record, status: 'ready', updatedAt: new Date().toISOString() })
  await objects.put(digestKey, digest)
  return (performance.now() - t0) / 1000
}
