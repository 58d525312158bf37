/** Tests of the implicit cosine operator against the matrix written out, and of weighted components. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { binarize, components, postingsOf, type BinaryRows } from './jaccard.ts'
import { cosineOperator, latentWeights } from './cosine.ts'
import { seededRng } from '../../util/random.ts'
import type { PooledCsr } from '../sparse.ts'

/** Random binary rows; row 3 is empty and latent 0 is present in every other row. */
function randomRows(nDocs: number, nLatents: number, seed: number): BinaryRows {
  const rng = seededRng(seed)
  const indptr = new Int32Array(nDocs + 1)
  const latents: number[] = []
  for (let i = 0; i < nDocs; i++) {
    if (i !== 3) {
      latents.push(0)
      for (let l = 1; l < nLatents; l++) if (rng.next() < 0.2) latents.push(l)
    }
    indptr[i + 1] = latents.length
  }
  const csr: PooledCsr = {
    nDocs,
    nLatents,
    indptr,
    latents: Int32Array.from(latents),
    values: new Float32Array(latents.length).fill(1),
    positions: new Int32Array(latents.length).fill(-1)
  }
  return binarize(csr)
}

/** The n x n cosine matrix of the weighted rows, zero diagonal, written out. */
function cosineMatrix(rows: BinaryRows, weights: Float64Array): Float64Array {
  const n = rows.nDocs
  const dense = new Float64Array(n * rows.nCols)
  for (let i = 0; i < n; i++) {
    let sq = 0
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) sq += weights[rows.cols[p]] ** 2
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++)
      dense[i * rows.nCols + rows.cols[p]] = sq > 0 ? weights[rows.cols[p]] / Math.sqrt(sq) : 0
  }
  const W = new Float64Array(n * n)
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      if (i === j) continue
      let s = 0
      for (let t = 0; t < rows.nCols; t++) s += dense[i * rows.nCols + t] * dense[j * rows.nCols + t]
      W[i * n + j] = s
    }
  return W
}

for (const weighting of ['sqrt-idf', 'none'] as const) {
  test(`cosine operator (${weighting}): products, degrees and cluster sums equal the matrix written out`, () => {
    const rows = randomRows(40, 30, 5)
    const n = rows.nDocs
    const weights = latentWeights(rows, postingsOf(rows), weighting)
    if (weighting === 'sqrt-idf') {
      // Latent 0 is in every row but the empty one: 39 of 40.
      assert.ok(Math.abs(weights[0] - Math.sqrt(Math.log(40 / 39))) < 1e-15)
    }
    const W = cosineMatrix(rows, weights)
    const op = cosineOperator(rows, weights)
    const rng = seededRng(2)
    const x = Float64Array.from({ length: n }, () => rng.next() - 0.5)
    const y = new Float64Array(n)
    op.apply(x, y)
    for (let i = 0; i < n; i++) {
      let want = 0,
        degree = 0
      for (let j = 0; j < n; j++) {
        want += W[i * n + j] * x[j]
        degree += W[i * n + j]
      }
      assert.ok(Math.abs(y[i] - want) < 1e-12, `row ${i}: ${y[i]} vs ${want}`)
      assert.ok(Math.abs(op.degree[i] - degree) < 1e-12, `degree ${i}`)
    }
    assert.equal(op.degree[3], 0, 'the empty row has no degree')
    const k = 3
    const assignments = Int32Array.from({ length: n }, (_, i) => i % k)
    const sums = op.clusterSums(assignments, k)
    for (let i = 0; i < n; i++)
      for (let c = 0; c < k; c++) {
        let want = 0
        for (let j = 0; j < n; j++) if (assignments[j] === c) want += W[i * n + j]
        assert.ok(Math.abs(sums[i * k + c] - want) < 1e-12, `sum ${i},${c}: ${sums[i * k + c]} vs ${want}`)
      }
  })
}

test('weighted components: a latent of weight 0 links nothing', () => {
  // Rows 0-1 share latent 1, rows 2-3 share latent 2, and latent 0 is in all four.
  const csr: PooledCsr = {
    nDocs: 4,
    nLatents: 3,
    indptr: Int32Array.from([0, 2, 4, 6, 8]),
    latents: Int32Array.from([0, 1, 0, 1, 0, 2, 0, 2]),
    values: new Float32Array(8).fill(1),
    positions: new Int32Array(8).fill(-1)
  }
  const rows = binarize(csr)
  const postings = postingsOf(rows)
  assert.equal(components(4, postings).count, 1)
  const weights = latentWeights(rows, postings, 'sqrt-idf')
  assert.equal(weights[0], 0)
  const weighted = components(4, postings, weights)
  assert.equal(weighted.count, 2)
  assert.deepEqual(Array.from(weighted.label), [0, 0, 1, 1])
})
