/** @module Tests of activation intervals: every present entry lands in the one interval that holds its value, samples are seeded, uniform and within their interval. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { activationIntervals } from './intervals.ts'

test('each present entry is counted in the interval (max k/n, max (k+1)/n] that holds it, highest first', () => {
  const values = Float32Array.from([0, 1, 2, 2.5, 5, 10, 0, 7.5, 4, 9.99])
  const r = activationIntervals(values, 4, 10, 0)
  assert.equal(r.max, 10)
  assert.equal(r.count, 8, 'zeros are absent')
  assert.deepEqual(
    r.intervals.map(i => [i.from, i.to, i.count]),
    [
      [7.5, 10, 2],
      [5, 7.5, 1],
      [2.5, 5, 2],
      [0, 2.5, 3]
    ]
  )
  // With room for all, the picks are the members, strongest first: a bound belongs to the interval below it.
  assert.deepEqual(
    r.intervals.map(i => i.picked),
    [[5, 9], [7], [4, 8], [3, 2, 1]]
  )
})

test('a sample is seeded, without repeats, inside its interval, and near uniform over many seeds', () => {
  const values = Float64Array.from({ length: 1000 }, (_, i) => (i + 1) / 1000)
  const a = activationIntervals(values, 5, 4, 7)
  assert.deepEqual(activationIntervals(values, 5, 4, 7), a, 'the same seed, the same answer')
  assert.notDeepEqual(activationIntervals(values, 5, 4, 8).intervals[0].picked, a.intervals[0].picked)
  for (const iv of a.intervals) {
    assert.equal(iv.count, 200)
    assert.equal(new Set(iv.picked).size, 4)
    for (const e of iv.picked) assert.ok(values[e] > iv.from && values[e] <= iv.to + 1e-6)
    for (let j = 1; j < iv.picked.length; j++) assert.ok(values[iv.picked[j]] <= values[iv.picked[j - 1]])
  }
  // Over 2,000 seeds each of the top interval's 200 entries is picked about 2000 * 4 / 200 = 40 times.
  const hits = new Int32Array(values.length)
  for (let seed = 0; seed < 2000; seed++)
    for (const e of activationIntervals(values, 5, 4, seed).intervals[0].picked) hits[e]++
  const top = hits.slice(800)
  assert.ok(Math.min(...top) >= 15 && Math.max(...top) <= 70, `picks per entry ${Math.min(...top)}-${Math.max(...top)}`)
})

test('an include filter (a slice) restricts the entries, and nothing present gives empty intervals', () => {
  const values = Float32Array.from([1, 2, 3, 4])
  const odd = activationIntervals(values, 2, 5, 0, e => e % 2 === 1)
  assert.equal(odd.max, 4)
  assert.deepEqual(
    odd.intervals.map(i => i.picked),
    [[3], [1]]
  )
  const none = activationIntervals(Float32Array.from([0, 0]), 3, 2, 0)
  assert.equal(none.max, 0)
  assert.deepEqual(
    none.intervals.map(i => i.count),
    [0, 0, 0]
  )
})
