/**
 * @module `npm run bench:search`: p50 of GET /search's service (sae, bm25, hybrid) and of similar documents over kept
 * synthetic stores, wall and CPU time, the same queries as `npm run bench:analyses` (20 planted topics, limit 20), without its other phases.
 *
 *   npm run bench:search [-- --docs 10000,100000 --latents 16384 --methods sae,bm25,hybrid --reps 1 --keep DIR]
 *
 * --keep DIR writes the stores there once (100k documents: ~2 minutes) and reuses them on later runs: run this file
 * from a copy of another commit with the same DIR for a before/after on identical data. CPU time (this process's user +
 * system) is printed beside wall time because on a shared machine wall time mostly measures the other processes; the
 * main thread's own CPU time (Linux) leaves out V8's background threads too.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { SearchQuery } from '@latentbase/shared/contract/search'
import type { AnalysisContext } from '../services/context.ts'
import { runSearch } from '../services/search-service.ts'
import { LOCAL_SIMILAR_BLOCK_ENTRIES, SIMILAR_BLOCK_ENTRIES, similarDocuments } from '../services/similar-service.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './synthetic-store.ts'

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '10000,100000' },
    latents: { type: 'string', default: '16384' },
    methods: { type: 'string', default: 'sae,bm25,hybrid' },
    reps: { type: 'string', default: '1' },
    keep: { type: 'string' }
  }
})
const TOPICS = 20
const TOPIC_LATENTS = 40
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN
}
/**
 * CPU time of this process's main thread in ms (Linux /proc, 10 ms ticks: read it summed over many searches), or
 * NaN elsewhere. Process CPU also counts V8's background threads (garbage collection, compilation).
 */
function mainThreadCpuMs(): number {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}
const root = values.keep ?? (await mkdtemp(join(tmpdir(), 'latentbase-search-')))
try {
  for (const nLatents of values.latents!.split(',').map(Number)) {
    for (const nDocs of values.docs!.split(',').map(Number)) {
      const objects = new FsObjectStore(join(root, `store-${nDocs}-${nLatents}`))
      const datasets = new DatasetStore(objects)
      const tenant = 'bench',
        encoderId = `synthetic-${nLatents}`,
        id = `a_${nDocs}_${nLatents}`
      const topics = syntheticTopics(nLatents, TOPICS, TOPIC_LATENTS)
      const encoders = syntheticCatalog(encoderId, nLatents, topics)
      if (!(await datasets.getManifest(tenant, id))) {
        await writeSyntheticDataset(
          objects,
          datasets,
          { tenant, id, encoderId },
          { nDocs, nLatents, meanActive: 300, topics: TOPICS, topicLatents: TOPIC_LATENTS, seed: 1 }
        )
      }
      const ctx: AnalysisContext = { objects, datasets, encoders, embedder: new OfflineEmbedder(), tenant }
      const labels = await encoders.labels(encoderId)
      console.log(`\n${nDocs.toLocaleString('en')} documents x ${nLatents.toLocaleString('en')} latents`)
      for (const method of values.methods!.split(',') as Array<'sae' | 'bm25' | 'hybrid'>) {
        const wall: number[] = [],
          cpu: number[] = []
        let first = 0
        let mainThread = 0
        for (let rep = 0; rep < Number(values.reps); rep++) {
          for (let i = 0; i < TOPICS; i++) {
            // Each repetition asks new queries (the answer and query caches would otherwise hide the work).
            const q = `${(labels[topics[i][0]] ?? '').replace(/ aspect \d+$/, '')}${rep ? ` ${rep}` : ''}`
            const t = performance.now()
            const c = process.cpuUsage()
            const m = mainThreadCpuMs()
            await runSearch(ctx, SearchQuery.parse({ dataset: id, q, method, limit: 20 }))
            const u = process.cpuUsage(c)
            if (rep || i) mainThread += mainThreadCpuMs() - m
            if (rep === 0 && i === 0) {
              first = performance.now() - t
              // What the first search starts in the background (the dataset's ids) settles before the timed ones.
              await new Promise(resolve => setTimeout(resolve, 500))
              continue
            }
            wall.push(performance.now() - t)
            cpu.push((u.user + u.system) / 1000)
          }
        }
        console.log(
          `  search ${method.padEnd(6)} first ${first.toFixed(0)} ms; p50 of ${wall.length}: wall ${median(wall).toFixed(1)} ms, cpu ${median(cpu).toFixed(1)} ms; mean main-thread cpu ${(mainThread / wall.length).toFixed(1)} ms`
        )
      }
      // Documents like a document: the first call also sums every document's weighted norm (one pass over the
      // sidecars, kept for the dataset); the next ones read only the query document's latents' columns.
      // The local server's block budget, then the default elsewhere (Workers, Lambda: the columns of a query past it
      // are read in blocks of latents, twice).
      for (const blockEntries of [LOCAL_SIMILAR_BLOCK_ENTRIES, SIMILAR_BLOCK_ENTRIES]) {
        const similarWall: number[] = []
        let similarFirst = 0
        // The memory a query holds above what the process held before it: JavaScript heap and array buffers, sampled
        // every 5 ms while reads are awaited (a lower bound; RSS would keep the first loop's peak for the second).
        const held = () => {
          const m = process.memoryUsage()
          return m.heapUsed + m.external
        }
        globalThis.gc?.()
        const heldBefore = held()
        let heldPeak = heldBefore
        const sampler = setInterval(() => {
          heldPeak = Math.max(heldPeak, held())
        }, 5)
        for (let i = 0; i < TOPICS; i++) {
          const t = performance.now()
          await similarDocuments(ctx, id, Math.floor((i * nDocs) / TOPICS), { limit: 20, shared: 5 }, { blockEntries })
          if (i === 0) similarFirst = performance.now() - t
          else similarWall.push(performance.now() - t)
        }
        clearInterval(sampler)
        console.log(
          `  similar documents, blocks of <= ${blockEntries.toLocaleString('en')} entries: first ${similarFirst.toFixed(0)} ms${blockEntries === LOCAL_SIMILAR_BLOCK_ENTRIES ? ' (with the norm pass)' : ''}; p50 of ${similarWall.length}: wall ${median(similarWall).toFixed(1)} ms; peak heap + buffers +${((heldPeak - heldBefore) / 2 ** 20).toFixed(0)} MB`
        )
      }
    }
  }
} finally {
  if (!values.keep) await rm(root, { recursive: true, force: true })
}
