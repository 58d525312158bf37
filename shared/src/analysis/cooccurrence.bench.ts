/**
 * @module Benchmark of co-occurrence counting on a synthetic store-shaped CSR: Zipf-like latent frequencies, hundreds
 * of active latents per document. Run: node --import tsx shared/src/analysis/cooccurrence.bench.ts [docs] [latents] [active]
 */
import { cooccurrence } from './cooccurrence.ts'
import type { PooledCsr } from './sparse.ts'

function rng(seed: number) {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return (s + 0.5) / 4294967296
  }
}

/** Latent j present in each document with probability f_j ~ 1 / (j + 20)^0.9, scaled to `active` per document on average. */
export function syntheticCsr(nDocs: number, nLatents: number, active: number, seed = 1): PooledCsr {
  const rand = rng(seed)
  const f = new Float64Array(nLatents)
  let sum = 0
  for (let j = 0; j < nLatents; j++) sum += f[j] = 1 / (j + 20) ** 0.9
  for (let j = 0; j < nLatents; j++) f[j] = Math.min(0.9, (f[j] * active) / sum)
  // Per latent, its documents by geometric gaps (cost ~ nnz, not docs x latents); then transpose to rows.
  const perDoc = new Int32Array(nDocs + 1)
  const cols: Int32Array[] = []
  for (let j = 0; j < nLatents; j++) {
    const docs: number[] = []
    const lnq = Math.log(1 - f[j])
    for (let d = Math.floor(Math.log(rand()) / lnq); d < nDocs; d += 1 + Math.floor(Math.log(rand()) / lnq))
      docs.push(d)
    cols.push(Int32Array.from(docs))
    for (const d of docs) perDoc[d + 1]++
  }
  for (let i = 0; i < nDocs; i++) perDoc[i + 1] += perDoc[i]
  const nnz = perDoc[nDocs]
  const latents = new Int32Array(nnz),
    values = new Float32Array(nnz),
    positions = new Int32Array(nnz)
  const fill = perDoc.slice(0, nDocs)
  for (let j = 0; j < nLatents; j++)
    for (const d of cols[j]) {
      const k = fill[d]++
      latents[k] = j
      values[k] = 0.5 + rand()
      positions[k] = Math.floor(rand() * 512)
    }
  return { nDocs, nLatents, indptr: perDoc, latents, values, positions }
}

const isMain = process.argv[1]?.endsWith('cooccurrence.bench.ts')
if (isMain) {
  const [nDocs = 10_000, nLatents = 16_384, active = 500] = process.argv.slice(2).map(Number)
  let peak = 0
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }
  const t0 = performance.now()
  const csr = syntheticCsr(nDocs, nLatents, active)
  const tGen = performance.now() - t0
  sample()
  const rssBefore = process.memoryUsage().rss
  const timer = setInterval(sample, 20)
  const t1 = performance.now()
  const r = cooccurrence(csr, { progress: sample })
  const seconds = (performance.now() - t1) / 1000
  clearInterval(timer)
  sample()
  const maxRss = process.resourceUsage().maxRSS * 1024
  const mb = (x: number) => `${(x / 2 ** 20).toFixed(0)} MB`
  console.log(
    `synthetic CSR: ${nDocs} documents x ${nLatents} latents, ${(csr.latents.length / nDocs).toFixed(0)} active per document (nnz ${csr.latents.length}), generated in ${(tGen / 1000).toFixed(1)} s`
  )
  console.log(
    `considered latents ${r.considered.length}, pair increments ${(r.work / 1e6).toFixed(0)} M, co-occurring pairs ${r.pairsCounted}, listed ${r.pairs.length}${r.truncated ? ' (truncated)' : ''}, adjacent dropped ${r.droppedAdjacent}`
  )
  console.log(
    `cooccurrence: ${seconds.toFixed(2)} s (${(r.work / seconds / 1e6).toFixed(0)} M increments/s); RSS before ${mb(rssBefore)}, peak sampled ${mb(peak)}, process max RSS ${mb(maxRss)}`
  )
}
