/** @module Benchmark of the latent shards and statistics file at 5M pooled latents: sizes and write/read times. */
import { csrFromCoo } from '../analysis/sparse.ts'
import { MemoryObjectStore, CountingObjectStore } from './memory-store.ts'
import { readByDocument } from './latent-shards/read-by-document.ts'
import { readByLatent } from './latent-shards/read-by-latent.ts'
import { writeLatentShards } from './latent-shards/write.ts'
import { mergeStats, statsFromCsr } from '../analysis/latent-stats.ts'
import { writeLatentStats } from './stats/write.ts'
import { parseLatentStats, readLatentStats } from './stats/read.ts'

const nnzTarget = Number(process.argv[2] ?? 5_000_000)
const nLatents = 16384
const perDoc = 50
const nDocs = Math.ceil(nnzTarget / perDoc)
let s = 12345
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
const docs = new Int32Array(nnzTarget)
const latents = new Int32Array(nnzTarget)
const values = new Float32Array(nnzTarget)
const positions = new Int32Array(nnzTarget)
let k = 0
for (let d = 0; d < nDocs && k < nnzTarget; d++) {
  const seen = new Set<number>()
  const n = Math.min(nnzTarget - k, 10 + Math.floor(rnd() * 80))
  while (seen.size < n) seen.add(Math.floor(rnd() ** 2 * nLatents)) // Zipf-like: low ids are common
  const len = 20 + Math.floor(rnd() * 400)
  for (const l of seen) {
    docs[k] = d
    latents[k] = l
    values[k] = -Math.log(rnd() + 1e-12) * 2
    positions[k] = Math.floor(rnd() * len)
    k++
  }
}
const csr = csrFromCoo(
  nDocs,
  nLatents,
  docs.subarray(0, k),
  latents.subarray(0, k),
  values.subarray(0, k),
  positions.subarray(0, k)
)
const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`
console.log(`${csr.latents.length} pooled latents, ${csr.nDocs} documents, ${nLatents} latents`)

let t = performance.now()
const shards = writeLatentShards(csr)
console.log(`write by-document + by-latent: ${ms(t)}`)
for (const [name, sh] of Object.entries(shards)) {
  console.log(
    `  ${name}: ${(sh.bytes.length / 1e6).toFixed(1)} MB, ${sh.file.rowGroups.length} row groups, ${(sh.bytes.length / sh.file.rows).toFixed(2)} bytes/row`
  )
}
const store = new CountingObjectStore(new MemoryObjectStore())
await store.put('d/doc.parquet', shards.byDocument.bytes)
await store.put('d/lat.parquet', shards.byLatent.bytes)
const fd = { key: 'doc.parquet', ...shards.byDocument.file }
const fl = { key: 'lat.parquet', ...shards.byLatent.file }
t = performance.now()
const back = await readByDocument(store, 'd/', [fd])
console.log(`readByDocument, all ${back.latents.length} rows: ${ms(t)}`)
store.reset()
t = performance.now()
const one = await readByDocument(store, 'd/', [fd], [50_000, 50_000])
console.log(
  `readByDocument, one document (${one.latents.length} latents): ${ms(t)}, ${(store.bytesRead / 1e3).toFixed(0)} kB fetched`
)
store.reset()
t = performance.now()
const few = await readByLatent(store, 'd/', [fl], [5000, 5001, 12000])
console.log(
  `readByLatent, 3 latents (${few.docs.length} rows): ${ms(t)}, ${(store.bytesRead / 1e6).toFixed(2)} MB fetched`
)
store.reset()
t = performance.now()
const all = await readByLatent(store, 'd/', [fl], { start: 0, end: nLatents })
console.log(`readByLatent, all latents (${all.docs.length} rows): ${ms(t)}`)

t = performance.now()
const half = Math.floor(nDocs / 2)
const sub = (a: number, b: number) => ({
  ...csr,
  nDocs: b - a,
  indptr: csr.indptr.slice(a, b + 1).map(x => x - csr.indptr[a]),
  latents: csr.latents.subarray(csr.indptr[a], csr.indptr[b]),
  values: csr.values.subarray(csr.indptr[a], csr.indptr[b])
})
const stats = mergeStats(statsFromCsr(sub(0, half), 0), statsFromCsr(sub(half, nDocs), half))
console.log(`statsFromCsr x2 + mergeStats: ${ms(t)}`)
for (const L of [16384, 65536]) {
  const big =
    L === nLatents
      ? stats
      : mergeStats(
          statsFromCsr({ ...csr, nLatents: L }),
          statsFromCsr({ ...csr, nLatents: L, nDocs: 0, indptr: new Int32Array(1) })
        )
  t = performance.now()
  const bytes = writeLatentStats(big)
  const tw = ms(t)
  t = performance.now()
  await parseLatentStats(bytes)
  const tr = ms(t)
  await store.put('d/stats.parquet', bytes)
  store.reset()
  t = performance.now()
  await readLatentStats(store, 'd/stats.parquet', ['doc_count'])
  console.log(
    `latent-stats.parquet, ${L} latents: ${(bytes.length / 1e6).toFixed(2)} MB, write ${tw}, read all ${tr}, ` +
      `doc_count only ${ms(t)} (${(store.bytesRead / 1e3).toFixed(0)} kB fetched)`
  )
}
