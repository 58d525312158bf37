/**
 * @module `npm run bench:cold`: the first diff, search and latent page of a fresh process (a serverless cold start),
 * each in its own child process over a store on disk: module loading, building the app, the first call and a
 * second one. The label embeddings are written when the store is, as a worker or the local server does when it
 * registers an encoder; `--no-warm` leaves them to the first process that needs them ("first ever" pays for them).
 *
 *   npm run bench:cold [-- --docs 10000,100000 --latents 16384 --runs 3 --keep DIR --no-warm]
 *
 * --compare DIR: also run each child from DIR, a copy of the repository at another commit (its api/ and shared/,
 * with node_modules linking here), alternating with this one's: before / after on the same stores, same load. Link
 * node_modules entry by entry, with DIR's own node_modules/@latentbase/{api,shared,...} pointing into DIR: a symlink
 * of the whole folder resolves `@latentbase/shared` to this checkout's shared/ (Node follows links to real paths).
 * --keep DIR: write the stores there and leave them (a later run with the same DIR reuses them; for profiling a
 * child: node --cpu-prof --import tsx api/src/bench/cold-start.child.ts DIR/store-10000 search 16384).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { LabelEmbeddingCache } from '@latentbase/shared/embeddings/label-cache'
import { warmLabelEmbeddings } from '@latentbase/shared/embeddings/label-warm'
import { syntheticEncoderInfo, syntheticLabels, syntheticTopics, writeSyntheticDataset } from './synthetic-store.ts'
import type { ColdResult } from './cold-start.child.ts'

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '10000' },
    latents: { type: 'string', default: '16384' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'string' },
    compare: { type: 'string' },
    'no-warm': { type: 'boolean', default: false }
  }
})
const run = promisify(execFile)
const child = fileURLToPath(new URL('./cold-start.child.ts', import.meta.url))
const nLatents = Number(values.latents)
const runs = Number(values.runs)

const root = values.keep ?? (await mkdtemp(join(tmpdir(), 'latentbase-cold-')))
try {
  for (const nDocs of values.docs!.split(',').map(Number)) {
    const store = join(root, `store-${nDocs}`)
    const objects = new FsObjectStore(store)
    const datasets = new DatasetStore(objects)
    const t = performance.now()
    const kept = values.keep !== undefined && (await datasets.getManifest('local', 'ds_b')) !== null
    for (const [id, rate, seed] of kept
      ? []
      : ([
          ['ds_a', 0.6, 1],
          ['ds_b', 0.3, 2]
        ] as const)) {
      await writeSyntheticDataset(
        objects,
        datasets,
        { tenant: 'local', id, encoderId: 'syn' },
        { nDocs, nLatents, meanActive: 300, topics: 20, topicLatents: 40, topicRate: rate, seed }
      )
    }
    const written = (performance.now() - t) / 1000
    // The children's encoder (cold-start.child.ts): the same labels, so the same digest.
    const [warm] = values['no-warm']
      ? []
      : await warmLabelEmbeddings(
          new LabelEmbeddingCache(objects),
          [
            {
              info: syntheticEncoderInfo('syn', nLatents),
              labels: syntheticLabels(nLatents, syntheticTopics(nLatents))
            }
          ],
          new OfflineEmbedder()
        )
    console.log(
      `\n${nDocs.toLocaleString('en')} documents x ${nLatents.toLocaleString('en')} latents (${kept ? 'the kept store' : `two datasets written in ${written.toFixed(1)} s`}; label embeddings ${warm ? `${warm.outcome} in ${warm.ms.toFixed(0)} ms` : 'left to the first search'})`
    )
    console.log(
      `  ${'call'.padEnd(8)} ${'process'.padEnd(18)} ${'modules'.padStart(9)} ${'first call'.padStart(11)} ${'second'.padStart(8)}   cpu: ${'modules'.padStart(7)} ${'first'.padStart(8)} ${'second'.padStart(8)}`
    )
    const versions: Array<[string, string]> = [
      ...(values.compare
        ? [['before', join(values.compare, 'api/src/bench/cold-start.child.ts')] as [string, string]]
        : []),
      ['this', child]
    ]
    for (const route of ['diff', 'search', 'latent']) {
      for (let r = 0; r < runs; r++) {
        for (const [version, script] of versions) {
          const { stdout } = await run(process.execPath, ['--import', 'tsx', script, store, route, String(nLatents)], {
            maxBuffer: 1 << 20,
            cwd: join(script, '../../../..')
          })
          const res = JSON.parse(stdout.trim().split('\n').pop()!) as ColdResult
          const which = `${r === 0 ? 'first ever' : `fresh #${r + 1}`}${values.compare ? ` ${version}` : ''}`
          // A child of an older commit may not report CPU time.
          const cpu = (ms: number | undefined, w: number) => (ms === undefined ? '-' : ms.toFixed(0)).padStart(w)
          console.log(
            `  ${route.padEnd(8)} ${which.padEnd(18)} ${res.modulesMs.toFixed(0).padStart(6)} ms ${res.firstMs.toFixed(0).padStart(8)} ms ${res.secondMs.toFixed(0).padStart(5)} ms        ${cpu(res.modulesCpuMs, 4)} ms ${cpu(res.firstCpuMs, 5)} ms ${cpu(res.secondCpuMs, 5)} ms  (${res.status})`
          )
        }
      }
    }
  }
  console.log(
    '\n(modules: process start to the app built, with tsx compiling TypeScript; first call: the request alone;\n cpu: the same spans in CPU time, user + system over all threads, which load from other processes inflates less)'
  )
} finally {
  if (!values.keep) await rm(root, { recursive: true, force: true })
}
