/** @module Tests of the retrieval metrics on hand-computed examples. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { averagePrecision, precisionAtK, meanAveragePrecision } from './retrieval-metrics.ts'

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`)

test('average precision: hits at ranks 1, 3 and 6 of 4 relevant', () => {
  // (1/1 + 2/3 + 3/6) / 4, the fourth relevant document never retrieved
  close(averagePrecision([10, 11, 12, 13, 14, 15, 16], new Set([10, 12, 15, 99])), (1 + 2 / 3 + 0.5) / 4)
  close(averagePrecision([1, 2, 3], new Set([1, 2, 3])), 1)
  close(averagePrecision([4, 5, 1], new Set([1])), 1 / 3)
  close(averagePrecision([4, 5], new Set()), 0)
})

test('precision@k counts missing places as misses', () => {
  close(precisionAtK([1, 2, 3, 4], new Set([2, 4]), 2), 0.5)
  close(precisionAtK([1, 2, 3, 4], new Set([2, 4]), 4), 0.5)
  close(precisionAtK([2], new Set([2, 4]), 10), 0.1)
  assert.throws(() => precisionAtK([1], new Set([1]), 0))
})

test('MAP is the mean over queries', () => {
  close(
    meanAveragePrecision([
      { ranking: [1, 2], relevant: new Set([2]) }, // 1/2
      { ranking: [3, 4], relevant: new Set([3, 4]) } // 1
    ]),
    0.75
  )
  close(meanAveragePrecision([]), 0)
})
