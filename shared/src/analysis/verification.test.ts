/** @module Tests of verification statistics: labelled samples with a known true difference, coverage of the interval, corrections and validity. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mulberry32 } from '../util/random.ts'
import { fisherExact, twoProportionZ } from './stats.ts'
import { bonferroniAdjust, holmAdjust, verificationStatistics } from './verification.ts'

test('a 30% vs 10% marker: the difference is ~20 points and the 95% interval covers the truth in ~95% of samples', () => {
  const rand = mulberry32(42)
  const trials = 400
  const n = 200
  let covered = 0
  let sum = 0
  for (let t = 0; t < trials; t++) {
    let yesA = 0,
      yesB = 0
    for (let i = 0; i < n; i++) {
      if (rand() < 0.3) yesA++
      if (rand() < 0.1) yesB++
    }
    const [s] = verificationStatistics([{ yesA, nA: n, yesB, nB: n }])
    assert.ok(Math.abs(s.difference - (yesA - yesB) / n) < 1e-12)
    if (s.ci95[0] <= 0.2 && 0.2 <= s.ci95[1]) covered++
    sum += s.difference
  }
  assert.ok(Math.abs(sum / trials - 0.2) < 0.01, `mean difference ${sum / trials}`)
  assert.ok(covered / trials > 0.92 && covered / trials < 0.99, `coverage ${covered / trials}`)
})

test('exact counts: 60/200 vs 20/200 is valid, significant and confirmed, by the z-test', () => {
  const [s] = verificationStatistics([{ yesA: 60, nA: 200, yesB: 20, nB: 200 }])
  assert.ok(Math.abs(s.difference - 0.2) < 1e-12)
  assert.equal(s.test, 'z')
  assert.ok(Math.abs(s.pValue - twoProportionZ(60, 200, 20, 200).pValue) < 1e-15)
  assert.ok(s.ci95[0] > 0.1 && s.ci95[1] < 0.3)
  assert.ok(s.valid && s.significant && s.confirmed)
})

test('small counts use Fisher; a tiny difference can be valid (paper reading) yet not significant', () => {
  const [s] = verificationStatistics([{ yesA: 3, nA: 20, yesB: 2, nB: 20 }])
  assert.equal(s.test, 'fisher')
  assert.equal(s.pValue, fisherExact(3, 17, 2, 18))
  assert.ok(s.valid, '5 points > 1 point')
  assert.ok(!s.significant && !s.confirmed)
  const [neg] = verificationStatistics([{ yesA: 2, nA: 20, yesB: 3, nB: 20 }])
  assert.ok(!neg.valid && neg.difference < 0)
  const [edge] = verificationStatistics([{ yesA: 1, nA: 100, yesB: 0, nB: 100 }])
  assert.ok(!edge.valid, 'exactly 1 point is not above 1 point')
})

test('Holm and Bonferroni adjust across the family; Holm is never larger', () => {
  const p = [0.01, 0.04, 0.03, 0.5]
  assert.deepEqual(Array.from(bonferroniAdjust(p)), [0.04, 0.16, 0.12, 1])
  // Holm: sorted 0.01*4, 0.03*3, 0.04*2, 0.5*1 -> 0.04, 0.09, 0.09 (monotone), 0.5
  const h = Array.from(holmAdjust(p))
  const want = [0.04, 0.09, 0.09, 0.5]
  h.forEach((v, i) => {
    assert.ok(Math.abs(v - want[i]) < 1e-12, `${i}: ${v}`)
  })
  const counts = [
    { yesA: 30, nA: 100, yesB: 15, nB: 100 },
    { yesA: 12, nA: 100, yesB: 10, nB: 100 },
    { yesA: 20, nA: 100, yesB: 9, nB: 100 }
  ]
  const holm = verificationStatistics(counts, { correction: 'holm' })
  const bonf = verificationStatistics(counts, { correction: 'bonferroni' })
  holm.forEach((s, i) => {
    assert.ok(s.adjustedPValue <= bonf[i].adjustedPValue + 1e-15 && s.adjustedPValue >= s.pValue)
  })
})

test('an empty side gives p = 1 and the widest interval; bad counts throw', () => {
  const [s] = verificationStatistics([{ yesA: 0, nA: 0, yesB: 3, nB: 10 }])
  assert.equal(s.pValue, 1)
  assert.deepEqual(s.ci95, [-1, 1])
  assert.ok(!s.significant)
  assert.throws(() => verificationStatistics([{ yesA: 5, nA: 4, yesB: 0, nB: 1 }]))
  assert.throws(() => verificationStatistics([{ yesA: 1.5, nA: 4, yesB: 0, nB: 1 }]))
})
