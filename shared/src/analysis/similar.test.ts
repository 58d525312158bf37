/** @module Tests of similar-document scoring: dot products summed block by block equal one pass, ties go to the lower row, shares add up. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PooledCsc } from './sparse.ts'
import {
  addSharedWeights,
  collectShared,
  rankSimilar,
  sharedLatents,
  sharesOf,
  sqrtIdfWeights,
  topSimilar
} from './similar.ts'

/** Columns from each document's present latents (value 1; a 0 entry where `zero` says, which must not count). */
function cscOf(rows: number[][], nLatents: number, zero?: [number, number]): PooledCsc {
  const cols: number[][] = Array.from({ length: nLatents }, () => [])
  rows.forEach((ls, d) => {
    for (const l of ls) cols[l].push(d)
  })
  const indptr = new Int32Array(nLatents + 1)
  const docs: number[] = []
  const values: number[] = []
  cols.forEach((ds, l) => {
    for (const d of ds) {
      docs.push(d)
      values.push(zero && zero[0] === d && zero[1] === l ? 0 : 1)
    }
    indptr[l + 1] = docs.length
  })
  return {
    nDocs: rows.length,
    nLatents,
    indptr,
    docs: Int32Array.from(docs),
    values: Float32Array.from(values),
    positions: new Int32Array(docs.length)
  }
}

const rows = [[0, 1, 2], [0, 1], [1, 2, 3], [3], [0, 1], [4]]
const N_LATENTS = 5
const csc = cscOf(rows, N_LATENTS, [5, 4])
const docCount = Int32Array.from([3, 4, 2, 2, 1])
const weights = sqrtIdfWeights(docCount, rows.length)
const norms = Float64Array.from(rows, ls => ls.reduce((s, l) => s + weights[l] ** 2, 0))

test('dot products summed over blocks of latents rank as one pass over all of them', () => {
  const query = [0, 1, 2]
  const whole = rankSimilar(csc, query, weights, norms, 0, 10)
  const dot = new Float64Array(rows.length)
  const queryNorm = addSharedWeights(csc, [0], weights, dot) + addSharedWeights(csc, [1, 2], weights, dot)
  assert.deepEqual(topSimilar(dot, queryNorm, norms, 0, 10), whole)
  // Rows 1 and 4 hold the same latents: the same score, the lower row first; the query row and row 5 are out.
  assert.deepEqual(Array.from(whole.rows), [1, 4, 2])
  assert.equal(whole.scores[0], whole.scores[1])
  assert.ok(whole.scores[1] > whole.scores[2])
  assert.deepEqual(Array.from(topSimilar(dot, queryNorm, norms, 0, 2).rows), [1, 4])
  // A candidate filter restricts the rows.
  assert.deepEqual(Array.from(topSimilar(dot, queryNorm, norms, 0, 10, r => r !== 1).rows), [4, 2])
})

test('shares collected block by block are those of one pass, and sum to 1 over every shared latent', () => {
  const found: Array<{ latent: number; weight: number }> = []
  collectShared(csc, [2], weights, 2, found)
  collectShared(csc, [0, 1], weights, 2, found)
  const shares = sharesOf(found, 5)
  assert.deepEqual(shares, sharedLatents(csc, [0, 1, 2], weights, 2, 5))
  assert.deepEqual(
    shares.map(s => s.latent),
    [2, 1]
  )
  assert.ok(Math.abs(shares.reduce((s, x) => s + x.share, 0) - 1) < 1e-12)
  // A zero value is not presence: row 5's latent 4 is not shared.
  assert.deepEqual(sharedLatents(csc, [4], weights, 5, 5), [])
})
