/** @module Tests of clustering past one process: the seeded sample, nearest-centroid assignment in parts against one piece, additive counts, partial bytes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { selectRows } from '../slice.ts'
import { binarize, type BinaryRows } from './jaccard.ts'
import { clusterDocuments, describeClusters, describeFromCounts } from './cluster.ts'
import {
  addCounts,
  assignNearest,
  centroidTable,
  countClusterLatents,
  decodeAssignPartial,
  decodeFit,
  emptyCounts,
  encodeAssignPartial,
  encodeFit,
  centralRows,
  emptyCentral,
  mergeCentral,
  sampleRows,
  type FittedSample
} from './assign.ts'
import { plantedCsr, purity } from './synthetic.ts'

test('the sample is seeded, ascending, of the asked size, and spread over the rows', () => {
  const a = sampleRows(10_000, 500, 3)
  assert.equal(a.length, 500)
  assert.deepEqual(a, sampleRows(10_000, 500, 3), 'same seed, same rows')
  assert.notDeepEqual(a, sampleRows(10_000, 500, 4), 'another seed, other rows')
  for (let i = 1; i < a.length; i++) assert.ok(a[i] > a[i - 1])
  // Uniform: each tenth of the rows holds about a tenth of the sample (binomial sd ~6.7).
  const tenths = new Array(10).fill(0)
  for (const r of a) tenths[Math.floor(r / 1000)]++
  for (const t of tenths) assert.ok(t > 20 && t < 80, `tenths ${tenths}`)
  assert.deepEqual(Array.from(sampleRows(5, 10, 1)), [0, 1, 2, 3, 4], 'a sample past the rows is every row')
})

const planted = plantedCsr({
  docs: 1200,
  nLatents: 300,
  seed: 5,
  noisePerDoc: 12,
  axes: [{ groups: 4, latentsPerGroup: 25, p: 0.4 }]
})

/** Rows [a, b) of the dataset, binarized with the fit's columns (what one part reads). */
function rowsOf(fit: FittedSample, a: number, b: number): BinaryRows {
  return binarize(
    selectRows(
      planted.csr,
      Array.from({ length: b - a }, (_, i) => a + i)
    ),
    fit.latentOf
  )
}

function fitOnSample(method: 'spectral' | 'kmeans'): FittedSample {
  const sample = sampleRows(planted.csr.nDocs, 200, 7)
  const rows = binarize(selectRows(planted.csr, sample))
  const out = clusterDocuments(rows, { k: 4, method, seed: 7 })
  return {
    rows: sample,
    assignments: out.assignments,
    latentOf: rows.latentOf,
    counts: countClusterLatents(rows, out.assignments, 4)
  }
}

for (const method of ['spectral', 'kmeans'] as const) {
  test(`${method}: assignment in parts equals assignment in one piece; counts add up; the sample keeps its clusters`, () => {
    const fit = fitOnSample(method)
    const n = planted.csr.nDocs
    const table = centroidTable(fit.counts)
    const fixed = (offset: number) => ({ rows: fit.rows, clusters: fit.assignments, offset })
    const whole = rowsOf(fit, 0, n)
    const one = assignNearest(whole, table, 4, fixed(0))
    const oneCounts = countClusterLatents(whole, one, 4)

    const bounds = [0, 137, 500, 501, 999, n]
    const pieces = new Int32Array(n)
    const summed = emptyCounts(4, fit.latentOf.length)
    for (let p = 0; p + 1 < bounds.length; p++) {
      const rows = rowsOf(fit, bounds[p], bounds[p + 1])
      const a = assignNearest(rows, table, 4, fixed(bounds[p]))
      const partial = decodeAssignPartial(
        encodeAssignPartial({ start: bounds[p], assignments: a, counts: countClusterLatents(rows, a, 4), empty: 0 })
      )
      pieces.set(partial.assignments, partial.start)
      addCounts(summed, partial.counts)
    }
    assert.deepEqual(pieces, one)
    assert.deepEqual(summed, oneCounts)
    assert.equal(
      summed.sizes.reduce((s, x) => s + x, 0),
      n
    )
    fit.rows.forEach((r, i) => {
      assert.equal(one[r], fit.assignments[i], `sampled row ${r}`)
    })
    // Descriptions from summed counts are the ones of the whole matrix.
    const labels = Array.from({ length: 300 }, (_, l) => `latent ${l}`)
    assert.deepEqual(describeFromCounts(summed, n, fit.latentOf, labels), describeClusters(whole, one, 4, labels))
    // The extension recovers the planted groups about as well as the fit does on its sample.
    assert.ok(purity(one, planted.labels[0]) > 0.9, `purity ${purity(one, planted.labels[0])}`)
  })
}

test('each unsampled row goes to the centroid of highest cosine (brute force)', () => {
  const fit = fitOnSample('kmeans')
  const whole = rowsOf(fit, 0, planted.csr.nDocs)
  const got = assignNearest(whole, centroidTable(fit.counts), 4)
  const { k, m, sizes, inCounts } = fit.counts
  for (let i = 0; i < whole.nDocs; i += 7) {
    let best = -1
    let bestCos = -1
    for (let c = 0; c < k; c++) {
      let dot = 0
      let norm = 0
      for (let t = 0; t < m; t++) norm += (inCounts[c * m + t] / sizes[c]) ** 2
      for (let p = whole.indptr[i]; p < whole.indptr[i + 1]; p++) dot += inCounts[c * m + whole.cols[p]] / sizes[c]
      const len = whole.indptr[i + 1] - whole.indptr[i]
      const cos = len ? dot / Math.sqrt(norm * len) : 0
      if (cos > bestCos + 1e-12) {
        bestCos = cos
        best = c
      }
    }
    assert.equal(got[i], best, `row ${i}`)
  }
})

test('a fitted sample and a partial survive their bytes; wrong bytes are refused', () => {
  const fit = fitOnSample('kmeans')
  assert.deepEqual(decodeFit(encodeFit(fit)), fit)
  assert.throws(() => decodeFit(new Uint8Array(7)), /bad length/)
  assert.throws(() => decodeAssignPartial(encodeFit(fit)), /bad magic/)
})

test('central rows: each cluster keeps its best cosines (ties to the lower row), parts merge to the whole, and survive their bytes', () => {
  // 7 rows, two clusters; row 5 has no column and never counts.
  const rows: BinaryRows = {
    nDocs: 7,
    nCols: 1,
    indptr: Int32Array.from([0, 1, 2, 3, 4, 5, 5, 6]),
    cols: new Int32Array(6),
    latentOf: new Int32Array(1)
  }
  const assignments = Int32Array.from([0, 1, 0, 0, 1, 0, 0])
  const cosines = Float32Array.from([0.5, 0.9, 0.7, 0.5, 0.2, 0.99, 0.1])
  const whole = centralRows(assignments, cosines, rows, 100, 2, 2)
  assert.deepEqual(Array.from(whole.rows), [102, 100, 101, 104], 'cluster 0: 0.7 then the lower of two 0.5s')
  // The same rows in two parts, merged in either order.
  const sub = (a: number, b: number): BinaryRows => ({
    ...rows,
    nDocs: b - a,
    indptr: rows.indptr.slice(a, b + 1).map(x => x - rows.indptr[a])
  })
  const first = () => centralRows(assignments.subarray(0, 3), cosines.subarray(0, 3), sub(0, 3), 100, 2, 2)
  const second = () => centralRows(assignments.subarray(3), cosines.subarray(3), sub(3, 7), 103, 2, 2)
  assert.deepEqual(mergeCentral(first(), second()), whole)
  assert.deepEqual(mergeCentral(second(), first()), whole)
  assert.deepEqual(mergeCentral(emptyCentral(2, 2), whole), whole)
  const partial = { start: 100, assignments, counts: countClusterLatents(rows, assignments, 2), empty: 1 }
  assert.deepEqual(decodeAssignPartial(encodeAssignPartial({ ...partial, central: whole })), {
    ...partial,
    central: whole
  })
  assert.deepEqual(decodeAssignPartial(encodeAssignPartial(partial)), partial, 'a partial without central rows')
})
