/**
 * @module `npm run analysis-worker:local`: one more consumer of local mode's analysis queue (DATA_DIR/analysis-queue, files on
 * disk) in its own process, beside `npm start`, so N processes share the blocks of a large correlations job. Stops
 * on SIGINT/SIGTERM after the message in hand, printing its CPU time and peak memory.
 */
import { join, resolve } from 'node:path'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { startLocalAnalysis } from './services/analysis-local.ts'
import type { CorrelationFanout } from './services/correlations-fanout.ts'

export interface LocalAnalysisWorkerOptions {
  dataDir: string
  encoders: EncoderCatalog
  embedder: Embedder
  signal: AbortSignal
  fanout?: CorrelationFanout
  log?: (line: string) => void
}

/** Consume the local analysis queue until `signal` aborts; resolves once the message in hand is finished. */
export async function runLocalAnalysisWorker(o: LocalAnalysisWorkerOptions): Promise<void> {
  const objects = new FsObjectStore(join(o.dataDir, 'store'))
  const analysis = startLocalAnalysis({
    dataDir: o.dataDir,
    objects,
    datasets: new DatasetStore(objects),
    encoders: o.encoders,
    embedder: o.embedder,
    fanout: o.fanout,
    log: o.log
  })
  await new Promise<void>(done => {
    if (o.signal.aborted) done()
    else o.signal.addEventListener('abort', () => done(), { once: true })
  })
  await analysis.close()
}

/** CPU seconds and peak resident memory of this process so far (what a worker prints at exit). */
export function usageLine(): string {
  const u = process.resourceUsage()
  return JSON.stringify({
    pid: process.pid,
    cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6,
    maxRssMB: Math.round(u.maxRSS / 1024)
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { catalogOf, findEncoderFolders, loadEncoders } = await import('@latentbase/gpu-worker/registry')
  const log = (line: string) => console.log(line)
  const abort = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`[analysis-worker] ${sig}: finishing the message in hand`)
      abort.abort()
    })
  const dataDir = resolve(process.env.DATA_DIR ?? '.data')
  const encoders = catalogOf(await loadEncoders(await findEncoderFolders(process.env.ENCODERS_DIR), log))
  log(`[analysis-worker] ${process.pid} consuming ${join(dataDir, 'analysis-queue')}`)
  await runLocalAnalysisWorker({ dataDir, encoders, embedder: embedderFromEnv(process.env), signal: abort.signal, log })
  log(`[analysis-worker] stopped ${usageLine()}`)
}
