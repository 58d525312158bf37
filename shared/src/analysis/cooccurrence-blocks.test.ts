/** @module Tests of co-occurrence by blocks: any number of blocks, slices and a byte round trip give the counter's exact pairs. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { csrFromCoo, type PooledCsr } from './sparse.ts'
import { consideredLatents, cooccurrence, presence, type CooccurrenceOptions } from './cooccurrence.ts'
import {
  BLOCK_CELL_BYTES,
  BlockCounter,
  decodePartial,
  encodePartial,
  mergePartials,
  planBlocks,
  triangleCells
} from './cooccurrence-blocks.ts'
import { mulberry32 } from '../util/random.ts'

/**
 * Random documents over `nLatents` latents, with two planted co-firing groups, one latent pinned to a position
 * (positional), one pair peaking on neighbouring tokens (adjacent) and some values <= 0 (absent).
 */
function fixture(nDocs: number, nLatents: number, seed: number): PooledCsr {
  const rand = mulberry32(seed)
  const d: number[] = [],
    l: number[] = [],
    v: number[] = [],
    p: number[] = []
  for (let i = 0; i < nDocs; i++) {
    const row = new Set<number>()
    for (let j = 0; j < nLatents; j++) if (rand() < 0.12 / (1 + j / 20)) row.add(j)
    if (rand() < 0.2) for (const j of [3, 9, 17, 30]) if (rand() < 0.8) row.add(j)
    if (rand() < 0.15) for (const j of [5, 6]) row.add(j)
    if (rand() < 0.3) row.add(40)
    for (const j of [...row].sort((x, y) => x - y)) {
      d.push(i)
      l.push(j)
      v.push(rand() < 0.05 ? 0 : 0.1 + rand())
      // 40 peaks at token 12 or 13 (positional); 5 and 6 on neighbouring tokens (adjacent).
      p.push(j === 40 ? 12 + (i % 2) : j === 5 ? 20 : j === 6 ? 21 : rand() < 0.1 ? -1 : Math.floor(rand() * 50))
    }
  }
  return csrFromCoo(nDocs, nLatents, d, l, v, p)
}

/** The documents [start, end) of a CSR as their own CSR (a slice as the store reads it). */
function rowsOf(csr: PooledCsr, start: number, end: number): PooledCsr {
  const k0 = csr.indptr[start],
    k1 = csr.indptr[end]
  return {
    nDocs: end - start,
    nLatents: csr.nLatents,
    indptr: csr.indptr.slice(start, end + 1).map(x => x - k0),
    latents: csr.latents.subarray(k0, k1),
    values: csr.values.subarray(k0, k1),
    positions: csr.positions.subarray(k0, k1)
  }
}

/**
 * Every block counted apart over slices of `slice` documents, walked in batches of ~`batch` entries (a slice larger
 * than a batch is one batch), its partial through bytes, then merged.
 */
function byBlocks(csr: PooledCsr, bounds: Int32Array, slice: number, options: CooccurrenceOptions, batch = 1000) {
  const docCount = presence(csr, options.minValue)
  const partials = []
  for (let b = 0; b + 1 < bounds.length; b++) {
    const counter = new BlockCounter(docCount, csr.nDocs, bounds[b], bounds[b + 1], { ...options, batchEntries: batch })
    for (let s = 0; s < csr.nDocs; s += slice) counter.add(rowsOf(csr, s, Math.min(csr.nDocs, s + slice)))
    partials.push(decodePartial(encodePartial(counter.finish())))
  }
  return mergePartials(partials.reverse(), docCount, csr.nDocs, options)
}

test('one block or many, in slices, give exactly the counter pairs, counts, NPMI order and tallies', () => {
  const csr = fixture(1500, 60, 1)
  const minValue = new Float32Array(60).fill(0.3)
  for (const options of [
    { minCount: 3, minNpmi: 0.05, maxFrequency: 0.6 },
    { minCount: 2, minNpmi: -1, maxFrequency: 1, dropAdjacent: false, dropPositional: false },
    { minCount: 3, minNpmi: 0, maxFrequency: 0.6, minValue, adjacentTokens: 2 }
  ] satisfies CooccurrenceOptions[]) {
    const whole = cooccurrence(csr, options)
    assert.ok(whole.pairs.length > 40, 'the fixture has pairs to compare')
    const m = whole.considered.length
    for (const blocks of [1, 2, 3, 7, m - 1]) {
      const got = byBlocks(csr, planBlocks(m, 1e12, blocks), 211, options, blocks === 2 ? 100 : 1000)
      assert.deepEqual(got.pairs, whole.pairs, `${blocks} blocks: same pairs in the same order`)
      assert.deepEqual(
        [got.pairsCounted, got.droppedAdjacent, got.droppedPositional, got.truncated, got.work],
        [whole.pairsCounted, whole.droppedAdjacent, whole.droppedPositional, whole.truncated, whole.work],
        `${blocks} blocks: same tallies`
      )
      assert.deepEqual(got.considered, whole.considered)
    }
  }
  const r = cooccurrence(csr, { minCount: 3, minNpmi: 0.05, maxFrequency: 0.6 })
  assert.ok(r.droppedPositional >= 1 && r.droppedAdjacent >= 1, 'the fixture exercises both drops')
})

test('a truncated candidate buffer keeps the same best pairs whether one block or many filled it', () => {
  const csr = fixture(800, 50, 2)
  const options = { minCount: 1, minNpmi: -1, maxFrequency: 1, dropAdjacent: false, maxCandidates: 37 }
  const whole = cooccurrence(csr, options)
  const all = cooccurrence(csr, { ...options, maxCandidates: 1e6 })
  assert.equal(whole.truncated, true)
  assert.equal(whole.pairs.length, 37)
  for (const k of ['a', 'b', 'count', 'npmi'] as const)
    assert.deepEqual(Array.from(whole.pairs[k]), Array.from(all.pairs[k].subarray(0, 37)), `the best 37 by ${k}`)
  for (const blocks of [2, 5, 11]) {
    const got = byBlocks(csr, planBlocks(whole.considered.length, 1e12, blocks), 97, options)
    assert.deepEqual(got.pairs, whole.pairs, `${blocks} blocks`)
    assert.equal(got.truncated, true)
  }
})

test('block plans cover the triangle in about equal areas within the memory budget', () => {
  const m = 16_384
  const budget = 256 * 2 ** 20
  const bounds = planBlocks(m, budget)
  const blocks = bounds.length - 1
  assert.equal(blocks, Math.ceil((triangleCells(m) * BLOCK_CELL_BYTES) / budget))
  assert.equal(bounds[0], 0)
  assert.equal(bounds[blocks], m)
  let sum = 0
  for (let b = 0; b < blocks; b++) {
    assert.ok(bounds[b + 1] > bounds[b], 'no empty block')
    const cells = triangleCells(m, bounds[b], bounds[b + 1])
    sum += cells
    assert.ok(
      cells * BLOCK_CELL_BYTES <= budget + m * BLOCK_CELL_BYTES,
      `block ${b} fits the budget (one row over at most)`
    )
  }
  assert.equal(sum, triangleCells(m))
  assert.deepEqual(Array.from(planBlocks(10, 1e12)), [0, 10], 'small triangles are one block')
  assert.deepEqual(Array.from(planBlocks(0, 1e12)), [0, 0])
  assert.equal(planBlocks(10, 1e12, 100).length - 1, 9, 'never more blocks than rows with pairs')
})

test('mismatched inputs are refused: document counts, missing blocks, corrupt partial bytes', () => {
  const csr = fixture(300, 30, 3)
  const docCount = presence(csr)
  const m = consideredLatents(docCount, csr.nDocs, { maxFrequency: 1 }).length
  const wrong = docCount.slice()
  wrong[consideredLatents(docCount, csr.nDocs, { maxFrequency: 1 })[0]]++
  const bad = new BlockCounter(wrong, csr.nDocs, 0, m, { maxFrequency: 1 })
  bad.add(csr)
  assert.throws(() => bad.finish(), /document count/)
  const short = new BlockCounter(docCount, csr.nDocs + 1, 0, m, { maxFrequency: 1 })
  short.add(csr)
  assert.throws(() => short.finish(), /added 300 of 301/)
  const half = new BlockCounter(docCount, csr.nDocs, 0, 3, { maxFrequency: 1 })
  half.add(csr)
  const part = half.finish()
  assert.ok(part.pairs.length > 0)
  assert.throws(() => mergePartials([part], docCount, csr.nDocs, { maxFrequency: 1 }), /cover rows \[0, 3\)/)
  const bytes = encodePartial(part)
  assert.throws(() => decodePartial(bytes.subarray(0, bytes.length - 4)), /should be/)
  assert.throws(() => decodePartial(new Uint8Array(80)), /not a correlations block partial/)
})
