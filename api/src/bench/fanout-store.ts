/** @module The store of `npm run bench:fanout`: one synthetic dataset on disk, written once and reused with --keep. */
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { writeSyntheticDataset } from './synthetic-store.ts'

export const FANOUT_TENANT = 'local'
export const FANOUT_ENCODER = 'syn'
export const fanoutDatasetId = (nDocs: number) => `ds_fan${nDocs}`

/** Write the dataset into `root/store` unless it is already there; returns the store folder and whether it was written. */
export async function prepareFanoutStore(
  root: string,
  nDocs: number,
  nLatents: number
): Promise<{ store: string; dataset: string; written: boolean; seconds: number }> {
  const store = join(root, 'store')
  const objects = new FsObjectStore(store)
  const datasets = new DatasetStore(objects)
  const dataset = fanoutDatasetId(nDocs)
  const t = performance.now()
  const kept = (await datasets.getManifest(FANOUT_TENANT, dataset)) !== null
  if (!kept)
    await writeSyntheticDataset(
      objects,
      datasets,
      { tenant: FANOUT_TENANT, id: dataset, encoderId: FANOUT_ENCODER },
      { nDocs, nLatents, meanActive: 300, topics: 20, topicLatents: 40, topicRate: 0.6, seed: 1 }
    )
  return { store, dataset, written: !kept, seconds: (performance.now() - t) / 1000 }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [root, docs, latents] = process.argv.slice(2)
  const r = await prepareFanoutStore(root, Number(docs), Number(latents ?? 16384))
  console.log(JSON.stringify(r))
}

/**
 * The benchmark's correlations request: the API's counting defaults but the paper's presence rule (minActivation 0:
 * every entry counts, the most counting work and memory, no presence pass), the top 50 pairs, the label filter off
 * (the planted topic latents have near-identical synthetic labels, which the filter would rightly drop as redundant).
 */
export const fanoutRequest = (dataset: string) => ({ dataset, limit: 50, maxLabelSimilarity: 1, minActivation: 0 })
