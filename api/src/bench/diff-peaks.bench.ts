/**
 * @module Benchmark of a diff's peaks (what unlabelled latents fire on, read off the top examples) on a store the demo
 * kept: spam-0 against ham-0, `peaks` none / unlabelled / all, limits 50 and 200, alternating in one process.
 *
 * Usage: DATA_DIR=/tmp/lb-demo npm run demo -- --keep, then
 *        node --import tsx api/src/bench/diff-peaks.bench.ts /tmp/lb-demo
 */
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { DiffQuery } from '@latentbase/shared/contract/diff'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { catalogOf, findEncoderFolders, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { AnalysisContext } from '../services/context.ts'
import { runDiff } from '../services/diff-service.ts'

const dataDir = process.argv[2]
if (!dataDir)
  throw new Error('usage: diff-peaks.bench.ts DATA_DIR (a folder `DATA_DIR=... npm run demo -- --keep` wrote)')
const objects = new FsObjectStore(join(dataDir, 'store'))
const datasets = new DatasetStore(objects)
const encoders = catalogOf(await loadEncoders(await findEncoderFolders(undefined), () => {}))
const ctx: AnalysisContext = { objects, datasets, encoders, embedder: new OfflineEmbedder(), tenant: 'local' }
const records = await datasets.listRecords('local')
const idOf = (name: string) => {
  const r = records.find(x => x.name === name && x.status === 'ready')
  if (!r) throw new Error(`no ready dataset "${name}" in ${dataDir}: run the demo with --keep into it first`)
  return r.id
}
const a = idOf('spam-0')
const b = idOf('ham-0')
const timed = async (limit: number, peaks: string) => {
  const t = performance.now()
  const out = await runDiff(ctx, DiffQuery.parse({ a, b, limit, direction: 'both', peaks }))
  return { ms: performance.now() - t, out }
}
const first = await timed(50, 'unlabelled')
console.log(
  `first diff in this process (limit 50, peaks unlabelled): ${first.ms.toFixed(1)} ms; ${first.out.latents.filter(l => !l.label).length} of 50 latents unlabelled`
)
const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1].toFixed(1)
for (const limit of [50, 200]) {
  const ms: Record<string, number[]> = { none: [], unlabelled: [], all: [] }
  for (let i = 0; i < 7; i++) for (const peaks of Object.keys(ms)) ms[peaks].push((await timed(limit, peaks)).ms)
  console.log(
    `limit ${limit}, median of 7: peaks=none ${median(ms.none)} ms, unlabelled ${median(ms.unlabelled)} ms, all ${median(ms.all)} ms`
  )
}
