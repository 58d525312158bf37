/**
 * @module A process of `npm run bench:fanout`: `worker ROOT LATENTS` consumes ROOT/analysis-queue until SIGTERM (one of
 * N workers); `direct ROOT LATENTS DATASET` answers the benchmark's correlations (or BENCH_CLUSTERS_REQUEST) in this one process as
 * computeCorrelations does (the single counter: the "before"). Each prints JSON lines: its CPU time and peak memory.
 */
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { computeCorrelations } from '../services/correlations-service.ts'
import { computeClusters } from '../services/clusters-service.ts'
import { runLocalAnalysisWorker, usageLine } from '../analysis-local-worker.ts'
import { syntheticCatalog, syntheticTopics } from './synthetic-store.ts'
import { FANOUT_TENANT, fanoutRequest } from './fanout-store.ts'

const [mode, root, latents, dataset] = process.argv.slice(2)
const nLatents = Number(latents)
const encoders = syntheticCatalog('syn', nLatents, syntheticTopics(nLatents, 20, 40))
const embedder = new OfflineEmbedder()
const say = (o: Record<string, unknown>) => console.log(JSON.stringify(o))

if (mode === 'worker') {
  const abort = new AbortController()
  process.once('SIGTERM', () => abort.abort())
  say({ event: 'started', ...JSON.parse(usageLine()) })
  // BENCH_FANOUT_LOG=1: the workers' log lines (blocks, merge) on stderr.
  const log = process.env.BENCH_FANOUT_LOG ? (line: string) => console.error(line) : undefined
  await runLocalAnalysisWorker({ dataDir: root, encoders, embedder, signal: abort.signal, log })
  say({ event: 'stopped', ...JSON.parse(usageLine()) })
} else if (mode === 'direct') {
  const objects = new FsObjectStore(join(root, 'store'))
  const ctx = { objects, datasets: new DatasetStore(objects), encoders, embedder, tenant: FANOUT_TENANT }
  say({ event: 'started', ...JSON.parse(usageLine()) })
  const t = performance.now()
  // BENCH_CLUSTERS_REQUEST: the clustering request answered in this one process instead (the before of clusters).
  const clusters = process.env.BENCH_CLUSTERS_REQUEST
  const result = clusters
    ? await computeClusters(ctx, { ...JSON.parse(clusters), dataset })
    : await computeCorrelations(ctx, CorrelationsQuery.parse(fanoutRequest(dataset)))
  say({ event: 'result', wallSeconds: (performance.now() - t) / 1000, result })
  say({ event: 'stopped', ...JSON.parse(usageLine()) })
} else throw new Error(`usage: fanout.child.ts worker|direct ROOT LATENTS [DATASET]`)
