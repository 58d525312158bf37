/** @module Tests for the statistics object: merge laws, top-k ties, p90 from the histogram (analysis/latent-stats.ts), Parquet round trip. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parquetMetadata } from 'hyparquet'
import { csrFromCoo, type PooledCsr } from '../../analysis/sparse.ts'
import { CountingObjectStore, MemoryObjectStore } from '../memory-store.ts'
import {
  HISTOGRAM_EDGES,
  HISTOGRAM_SLOTS,
  histogramSlot,
  mergeStats,
  p90,
  quantile,
  statsFromCsr,
  type LatentStats
} from '../../analysis/latent-stats.ts'
import { parseLatentStats, readLatentStats } from './read.ts'
import { writeLatentStats } from './write.ts'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

/** Values on a coarse grid, so many documents tie and the top-k cut falls inside ties. */
function chunk(nDocs: number, nLatents: number, seed: number): PooledCsr {
  const r = rng(seed)
  const d: number[] = []
  const l: number[] = []
  const v: number[] = []
  for (let i = 0; i < nDocs; i++) {
    for (let j = 0; j < nLatents; j++) {
      if (r() < 0.4) {
        d.push(i)
        l.push(j)
        v.push(r() < 0.1 ? 0 : Math.ceil(r() * 6) / 2)
      }
    }
  }
  return csrFromCoo(nDocs, nLatents, d, l, v)
}

function concatCsr(parts: PooledCsr[]): PooledCsr {
  const d: number[] = []
  const l: number[] = []
  const v: number[] = []
  let off = 0
  for (const p of parts) {
    for (let i = 0; i < p.nDocs; i++)
      for (let k = p.indptr[i]; k < p.indptr[i + 1]; k++) {
        d.push(off + i)
        l.push(p.latents[k])
        v.push(p.values[k])
      }
    off += p.nDocs
  }
  return csrFromCoo(off, parts[0].nLatents, d, l, v)
}

function assertStatsEqual(x: LatentStats, y: LatentStats): void {
  assert.deepEqual(x.docCount, y.docCount)
  assert.deepEqual(x.max, y.max)
  assert.deepEqual(x.histogram, y.histogram)
  assert.deepEqual(x.topDocs, y.topDocs)
  assert.deepEqual(x.topValues, y.topValues)
  for (let i = 0; i < x.nLatents; i++)
    assert.ok(Math.abs(x.sum[i] - y.sum[i]) <= 1e-9 * Math.max(1, Math.abs(y.sum[i])))
}

test('histogram slots: 8 log bins per decade, edges belong to the bin above, under/overflow', () => {
  assert.equal(HISTOGRAM_EDGES.length, 65)
  assert.equal(histogramSlot(5e-5), 0)
  assert.equal(histogramSlot(1e-4), 1)
  assert.equal(histogramSlot(1), 33)
  assert.equal(histogramSlot(0.999999), 32)
  assert.equal(histogramSlot(9999), 64)
  assert.equal(histogramSlot(1e4), 65)
  for (let b = 0; b < 64; b++) {
    assert.equal(histogramSlot(HISTOGRAM_EDGES[b]), b + 1)
    assert.equal(histogramSlot(HISTOGRAM_EDGES[b + 1] * (1 - 1e-12)), b + 1)
  }
})

test('statsFromCsr counts present values only and keeps top-k sorted with ties to the lower doc', () => {
  const m = csrFromCoo(6, 2, [0, 1, 2, 3, 4, 5, 0], [0, 0, 0, 0, 0, 0, 1], [2, 0, 3, 2, 3, 2, 1])
  const s = statsFromCsr(m, 100, 3)
  assert.equal(s.docCount[0], 5)
  assert.equal(s.sum[0], 12)
  assert.equal(s.max[0], 3)
  assert.deepEqual([...s.topDocs.subarray(0, 3)], [102, 104, 100])
  assert.deepEqual([...s.topValues.subarray(0, 3)], [3, 3, 2])
  assert.deepEqual([...s.topDocs.subarray(3, 6)], [100, -1, -1])
  let total = 0
  for (let i = 0; i < HISTOGRAM_SLOTS; i++) total += s.histogram[i]
  assert.equal(total, 5)
})

test('mergeStats is associative and commutative and equals the statistics of all documents at once', () => {
  const parts = [chunk(40, 30, 1), chunk(25, 30, 2), chunk(33, 30, 3)]
  const offsets = [0, 40, 65]
  const [a, b, c] = parts.map((p, i) => statsFromCsr(p, offsets[i], 5))
  const whole = statsFromCsr(concatCsr(parts), 0, 5)
  assertStatsEqual(mergeStats(mergeStats(a, b), c), whole)
  assertStatsEqual(mergeStats(a, mergeStats(b, c)), whole)
  assertStatsEqual(mergeStats(mergeStats(c, a), b), whole)
  assertStatsEqual(mergeStats(b, mergeStats(c, a)), whole)
  // The grid values make ties at the cut: the test is only meaningful if some top list is full and tied at its end.
  let tiedCut = 0
  for (let l = 0; l < 30; l++)
    if (whole.topValues[l * 5 + 4] === whole.topValues[l * 5 + 3] && whole.topDocs[l * 5 + 4] >= 0) tiedCut++
  assert.ok(tiedCut > 5)
  assert.throws(() => mergeStats(a, statsFromCsr(parts[0], 0, 6)), /top-5/)
})

test('p90 from the histogram is within one bin of the exact p90', () => {
  const r = rng(9)
  for (const scale of [0.01, 1, 37, 2000]) {
    const n = 5000
    const vals = Array.from({ length: n }, () => scale * Math.exp(r() * 3 - 1.5))
    const m = csrFromCoo(
      n,
      1,
      vals.map((_, i) => i),
      new Array(n).fill(0),
      vals
    )
    const s = statsFromCsr(m)
    const sorted = Float32Array.from(vals).sort()
    const exact = sorted[Math.ceil(0.9 * n) - 1]
    const b = histogramSlot(exact) - 1
    const width = HISTOGRAM_EDGES[b + 1] - HISTOGRAM_EDGES[b]
    const est = p90(s, 0)
    assert.ok(Math.abs(est - exact) <= width, `scale ${scale}: p90 ${est} vs exact ${exact}, bin width ${width}`)
    assert.ok(quantile(s, 0, 1) <= s.max[0])
    assert.ok(quantile(s, 0, 0.5) < est)
  }
  assert.ok(Number.isNaN(p90(statsFromCsr(csrFromCoo(1, 2, [0], [0], [1])), 1)))
})

test('statistics round trip through Parquet with LIST columns', async () => {
  const parts = [chunk(60, 40, 4), chunk(50, 40, 5)]
  const s = mergeStats(statsFromCsr(parts[0], 0), statsFromCsr(parts[1], 60))
  const bytes = writeLatentStats(s)
  const meta = parquetMetadata(bytes.buffer as ArrayBuffer)
  assert.deepEqual(
    meta.schema.filter(e => e.converted_type === 'LIST').map(e => e.name),
    ['histogram', 'top_docs', 'top_values']
  )
  const store = new MemoryObjectStore()
  await store.put('t/datasets/d/stats/latent-stats.parquet', bytes)
  const back = await readLatentStats(store, 't/datasets/d/stats/latent-stats.parquet')
  assert.equal(back.nLatents, 40)
  assert.equal(back.topK, s.topK)
  assertStatsEqual(back, s)
  assert.deepEqual(back.sum, s.sum)
  await assert.rejects(readLatentStats(store, 'missing/stats.parquet'), /not found/)
  await assert.rejects(readLatentStats(store, 'missing/stats.parquet', ['doc_count']), /not found/)
  // Only the document counts: the other columns stay empty and their bytes are not fetched.
  const counting = new CountingObjectStore(store)
  const counts = await readLatentStats(counting, 't/datasets/d/stats/latent-stats.parquet', ['doc_count'])
  assert.deepEqual(counts.docCount, s.docCount)
  assert.equal(
    counts.histogram.reduce((a, b) => a + b, 0),
    0
  )
  assert.ok(counts.topDocs.every(d => d === -1))
  assert.equal((await parseLatentStats(writeLatentStats(statsFromCsr(csrFromCoo(0, 3, [], [], []))))).nLatents, 3)
})
