/** @module Tests of the count statistics against published values, exact BigInt oracles and properties. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mulberry32 as rng } from '../util/random.ts'
import {
  benjaminiHochberg,
  chiSquare1Tail,
  chooseTest,
  cochranMantelHaenszel,
  erfc,
  fisherExact,
  greenlandRobinsRiskDifferenceVariance,
  logFactorial,
  mcnemarExact,
  newcombeDifferenceInterval,
  newcombePairedInterval,
  normalTwoSided,
  pairedProportions,
  twoProportionZ,
  wilsonInterval,
  type Table2x2
} from './stats.ts'

function close(actual: number, expected: number, rel: number, what = ''): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), Number.MIN_VALUE)
  assert.ok(err <= rel, `${what} ${actual} vs ${expected} (relative error ${err.toExponential(2)} > ${rel})`)
}

function near(actual: number, expected: number, abs: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= abs, `${what} ${actual} vs ${expected} (off by more than ${abs})`)
}

function binomialSample(n: number, p: number, r: () => number): number {
  let x = 0
  for (let i = 0; i < n; i++) if (r() < p) x++
  return x
}

// Exact oracles in BigInt rational arithmetic: independent of every float trick in stats.ts.
function choose(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n
  let r = 1n
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i)
  return r
}

function ratio(num: bigint, den: bigint): number {
  const scale = 10n ** 30n
  return Number((num * scale) / den) / 1e30
}

function fisherOracle(a: number, b: number, c: number, d: number): number {
  const m = a + c,
    n = b + d,
    k = a + b
  const weight = (x: number) => choose(m, x) * choose(n, k - x)
  const obs = weight(a)
  let tail = 0n
  let total = 0n
  for (let x = Math.max(0, k - n); x <= Math.min(k, m); x++) {
    const w = weight(x)
    total += w
    if (w * 10000000n <= obs * 10000001n) tail += w // R's relative tolerance 1e-7
  }
  return Math.min(1, ratio(tail, total))
}

function mcnemarOracle(b: number, c: number): number {
  const n = b + c
  if (n === 0) return 1
  let tail = 0n
  for (let i = 0; i <= Math.min(b, c); i++) tail += choose(n, i)
  return Math.min(1, ratio(2n * tail, 2n ** BigInt(n)))
}

test('erfc matches 30-digit mpmath values from the centre to the far tail', () => {
  // mpmath.erfc(x) with mp.dps = 30.
  const reference: [number, number][] = [
    [0.1, 0.8875370839817151],
    [0.5, 0.47950012218695346],
    [1, 0.15729920705028513],
    [1.5, 0.033894853524689273],
    [2, 0.0046777349810472658],
    [2.5, 0.00040695201744495894],
    [3, 2.2090496998585441e-5],
    [5, 1.5374597944280349e-12],
    [10, 2.0884875837625448e-45],
    [20, 5.3958656116079009e-176],
    [26, 5.6631924088561428e-296]
  ]
  for (const [x, expected] of reference) close(erfc(x), expected, 5e-14, `erfc(${x})`)
  close(erfc(-1), 2 - 0.15729920705028513, 1e-15, 'erfc(-1)')
  assert.equal(erfc(0), 1)
})

test('normal p-values stay positive and accurate down to 1e-299 (|z| < 37)', () => {
  // 2 * pnorm(-37) = erfc(37 / sqrt 2) = 1.14511424450491536e-299 (mpmath, 30 digits).
  close(normalTwoSided(37), 1.14511424450491536e-299, 1e-12, 'z = 37')
  close(normalTwoSided(-36), 8.36524813159456666e-284, 1e-12, 'z = -36')
  close(normalTwoSided(1.959963984540054), 0.05, 1e-13, 'z = 1.96')
  let previous = 1
  for (let z = 0; z < 37; z += 0.25) {
    const p = normalTwoSided(z)
    assert.ok(p > 0 && p <= previous, `p(${z}) = ${p} must be positive and decreasing`)
    previous = p
  }
  // chi-square(1) tail at 3.841459 is 0.05.
  close(chiSquare1Tail(3.841458820694124), 0.05, 1e-12)
})

test('Fisher exact: published values', () => {
  // R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value = 0.4857 (the tea-tasting lady; exactly 34/70).
  close(fisherExact(3, 1, 1, 3), 34 / 70, 1e-14, 'tea tasting')
  // The dieting example of Wikipedia's "Fisher's exact test": two-tailed p = 0.002759
  // (scipy.stats.fisher_exact([[1, 9], [11, 3]]) = 0.0027594561852200836).
  close(fisherExact(1, 9, 11, 3), 0.0027594561852200836, 1e-12, 'dieting')
  // Fagerland, Lydersen & Laake (2017), CHRNA4 genotype and XFS: Fisher exact P = 0.06287
  // (contingencytables' test suite), scipy gives 0.06286666463010933.
  close(fisherExact(0, 16, 15, 57), 0.06286666463010933, 1e-12, 'Ritland 2007')
  // A rare latent in two datasets of ~10^6 documents: exact summation with mpmath at 50 digits gives
  // 4.6863324962161935e-47 (scipy's lgamma-based value is off in the 10th digit).
  close(fisherExact(10, 990000, 200, 990000), 4.6863324962161935e-47, 1e-12, 'n = 2e6')
  assert.equal(fisherExact(0, 0, 0, 0), 1)
  assert.equal(fisherExact(5, 0, 7, 0), 1)
})

test('Fisher exact agrees with a BigInt oracle and is symmetric', () => {
  const r = rng(11)
  for (let t = 0; t < 200; t++) {
    const [a, b, c, d] = [0, 0, 0, 0].map(() => Math.floor(r() * (t < 150 ? 15 : 60)))
    const p = fisherExact(a, b, c, d)
    close(p, fisherOracle(a, b, c, d), 1e-10, `fisher(${a},${b},${c},${d})`)
    assert.ok(p >= 0 && p <= 1)
    // Swapping the groups (rows), the outcomes (columns) or transposing leaves the test unchanged.
    close(fisherExact(c, d, a, b), p, 1e-12, 'rows swapped')
    close(fisherExact(b, a, d, c), p, 1e-12, 'columns swapped')
    close(fisherExact(a, c, b, d), p, 1e-12, 'transposed')
  }
})

test('two-proportion z: z^2 is Pearson chi-square, and swapping groups flips z only', () => {
  // Fagerland et al. (2017): Pearson chi-squared test on [[3,1],[1,3]]: P = 0.15730, T = 2.000.
  const tea = twoProportionZ(3, 4, 1, 4)
  close(tea.z * tea.z, 2, 1e-14)
  close(tea.pValue, 0.15729920705028513, 1e-13)
  const r = rng(5)
  for (let t = 0; t < 200; t++) {
    const n1 = 1 + Math.floor(r() * 5000),
      n2 = 1 + Math.floor(r() * 5000)
    const x1 = Math.floor(r() * (n1 + 1)),
      x2 = Math.floor(r() * (n2 + 1))
    const { z, pValue } = twoProportionZ(x1, n1, x2, n2)
    assert.ok(pValue >= 0 && pValue <= 1)
    const swapped = twoProportionZ(x2, n2, x1, n1)
    assert.equal(swapped.z, -z)
    assert.equal(swapped.pValue, pValue)
    // Pearson's chi-square from the four cells and their expected counts.
    const N = n1 + n2,
      m1 = x1 + x2
    if (m1 === 0 || m1 === N) {
      assert.equal(pValue, 1)
      continue
    }
    let chi = 0
    for (const [o, e] of [
      [x1, (n1 * m1) / N],
      [n1 - x1, (n1 * (N - m1)) / N],
      [x2, (n2 * m1) / N],
      [n2 - x2, (n2 * (N - m1)) / N]
    ])
      chi += (o - e) ** 2 / e
    close(z * z, chi, 1e-9, 'z^2 vs chi-square')
  }
  // Large n: the tail is representable and not flushed to 0 while |z| < 37.
  const big = twoProportionZ(250000, 1000000, 237000, 1000000)
  assert.ok(big.z > 20 && big.z < 37 && big.pValue > 0 && big.pValue < 1e-90)
})

test('Wilson and Newcombe intervals: Newcombe (1998) Table II, method 10', () => {
  // Newcombe RG, Stat Med 1998;17:873-890, examples (a), (b), (d), (e), (f) for method 10.
  const cases: [number, number, number, number, number, number][] = [
    [56, 70, 48, 80, 0.0524, 0.3339],
    [9, 10, 3, 10, 0.1705, 0.809],
    [5, 56, 0, 29, -0.0381, 0.1926],
    [0, 10, 0, 20, -0.1611, 0.2775],
    [10, 10, 0, 20, 0.6791, 1.0],
    // Fagerland et al. (2017), high vs standard dose epinephrine, 7/34 vs 1/34: 0.0189 to 0.3404.
    [7, 34, 1, 34, 0.0189, 0.3404]
  ]
  for (const [x1, n1, x2, n2, lo, hi] of cases) {
    const [l, u] = newcombeDifferenceInterval(x1, n1, x2, n2)
    near(l, lo, 5e-5, `${x1}/${n1} - ${x2}/${n2} lower`)
    near(u, hi, 5e-5, `${x1}/${n1} - ${x2}/${n2} upper`)
    // Swapping the groups mirrors the interval.
    const [l2, u2] = newcombeDifferenceInterval(x2, n2, x1, n1)
    near(l2, -u, 1e-12)
    near(u2, -l, 1e-12)
  }
  // Wilson limits implied by example (e): 0/10 -> upper 0.2775.
  near(wilsonInterval(0, 10)[1], 0.2775, 5e-5)
  assert.deepEqual(wilsonInterval(0, 0), [0, 1])
  const [l, u] = wilsonInterval(30, 100)
  assert.ok(l < 0.3 && u > 0.3 && l > 0.2 && u < 0.4)
})

test('Newcombe intervals cover the true difference about 95% of the time', () => {
  const r = rng(99)
  let covered = 0
  const runs = 2000
  for (let t = 0; t < runs; t++) {
    const x1 = binomialSample(40, 0.3, r)
    const x2 = binomialSample(60, 0.15, r)
    const [l, u] = newcombeDifferenceInterval(x1, 40, x2, 60)
    if (l <= 0.15 && 0.15 <= u) covered++
  }
  const coverage = covered / runs
  assert.ok(coverage > 0.93 && coverage < 0.975, `coverage ${coverage}`)
})

test('Benjamini-Hochberg: scipy reference, monotone, capped, order-preserving', () => {
  // scipy.stats.false_discovery_control([0.01, 0.04, 0.03, 0.005, 0.5]) = [0.025, 0.05, 0.05, 0.025, 0.5]
  const q = benjaminiHochberg(Float64Array.from([0.01, 0.04, 0.03, 0.005, 0.5]))
  const expected = [0.025, 0.05, 0.05, 0.025, 0.5]
  for (let i = 0; i < 5; i++) close(q[i], expected[i], 1e-12)
  const r = rng(3)
  const p = Float64Array.from({ length: 500 }, () => (r() < 0.2 ? r() * 1e-4 : r()))
  const qs = benjaminiHochberg(p)
  const order = Array.from(p.keys()).sort((x, y) => p[x] - p[y])
  for (let i = 0; i < p.length; i++) {
    assert.ok(qs[i] >= p[i] && qs[i] <= 1, 'p <= q <= 1')
    if (i > 0) assert.ok(qs[order[i]] >= qs[order[i - 1]], 'q is monotone in p')
  }
  assert.equal(benjaminiHochberg(new Float64Array(0)).length, 0)
  assert.deepEqual(Array.from(benjaminiHochberg(Float64Array.from([1, 1, 1]))), [1, 1, 1])
})

test('Benjamini-Hochberg: the same q, bit for bit, as ranking indices one by one (ties in any order, NaN as 1)', () => {
  // The textbook form: rank indices by p (ties by index), running minimum from the largest rank down.
  const byIndexSort = (pv: Float64Array): Float64Array => {
    const m = pv.length
    const p = (i: number) => (Number.isNaN(pv[i]) ? 1 : pv[i])
    const order = Array.from({ length: m }, (_, i) => i).sort((x, y) => p(x) - p(y) || x - y)
    const q = new Float64Array(m)
    let running = 1
    for (let r = m - 1; r >= 0; r--) {
      running = Math.min(running, (p(order[r]) * m) / (r + 1))
      q[order[r]] = running
    }
    return q
  }
  const r = rng(11)
  for (const m of [1, 2, 7, 100, 2000]) {
    // Coarse values (many ties), exact zeros and ones, NaNs and tiny p-values.
    const p = Float64Array.from({ length: m }, () => {
      const u = r()
      return u < 0.1 ? Number.NaN : u < 0.2 ? 1 : u < 0.25 ? 0 : u < 0.5 ? Math.round(r() * 20) / 20 : r() * 1e-3
    })
    assert.deepEqual(Array.from(benjaminiHochberg(p)), Array.from(byIndexSort(p)), `m = ${m}`)
  }
})

test('McNemar exact: binomial references and a BigInt oracle', () => {
  // R: binom.test(1, 10)$p.value = 0.02148 (= 22/1024).
  close(mcnemarExact(1, 9), 22 / 1024, 1e-14)
  close(mcnemarExact(9, 1), 22 / 1024, 1e-14)
  assert.equal(mcnemarExact(0, 0), 1)
  assert.equal(mcnemarExact(7, 7), 1)
  // 2 P(X <= 400000), X ~ Bin(801000, 1/2): 0.26432858981604882 (mpmath, 50 digits).
  close(mcnemarExact(400000, 401000), 0.26432858981604882, 1e-12, 'n = 801000')
  const r = rng(17)
  for (let t = 0; t < 150; t++) {
    const b = Math.floor(r() * 80),
      c = Math.floor(r() * 80)
    close(mcnemarExact(b, c), mcnemarOracle(b, c), 1e-11, `mcnemar(${b}, ${c})`)
    assert.equal(mcnemarExact(b, c), mcnemarExact(c, b))
  }
})

test('paired interval: Newcombe (1998b) method 10 on a published table', () => {
  // Cavo et al. (2012) in Fagerland et al. (2017) ch. 8: [[59, 6], [16, 80]] -> estimate -0.0621,
  // 95% CI -0.1186 to -0.0046 (contingencytables' test suite).
  const [l, u] = newcombePairedInterval(59, 6, 16, 80)
  near(l, -0.1186, 5e-5)
  near(u, -0.0046, 5e-5)
  const r = pairedProportions(59, 6, 16, 80)
  close(r.difference, -10 / 161, 1e-14)
  close(r.pValue, mcnemarOracle(6, 16), 1e-12)
  // Positive within-pair correlation narrows the interval compared with independent samples.
  const [il, iu] = newcombeDifferenceInterval(65, 161, 75, 161)
  assert.ok(u - l < iu - il)
})

test('CMH: R mantelhaen.test Rabbits example and Fagerland et al. stratified tables', () => {
  // R's ?mantelhaen.test, penicillin and rabbits (Delay x Response x Penicillin.Level):
  // Mantel-Haenszel X-squared = 3.9286, df = 1, p-value = 0.04747 (with continuity correction).
  const rabbits: Table2x2[] = [
    [0, 6, 0, 5],
    [3, 3, 0, 6],
    [6, 0, 2, 4],
    [5, 1, 6, 0],
    [2, 0, 5, 0]
  ].map(([a, b, c, d]) => ({ a, b, c, d }))
  const res = cochranMantelHaenszel(rabbits)
  near(res.statistic, 3.9286, 5e-5)
  near(res.pValue, 0.04747, 5e-6)
  // Fagerland et al. (2017) ch. 10, two strata: CMH T0 = 24.920 (no continuity correction); MH risk
  // difference 0.3294 with Wald CI 0.2281 to 0.4307 under the Greenland-Robins variance.
  const strata: Table2x2[] = [
    { a: 647, b: 622, c: 2, d: 27 },
    { a: 41, b: 28, c: 19, d: 32 }
  ]
  const uncorrected = cochranMantelHaenszel(strata, { correct: false })
  near(uncorrected.statistic, 24.92, 5e-4)
  near(uncorrected.riskDifference, 0.3294, 5e-5)
  const sd = Math.sqrt(greenlandRobinsRiskDifferenceVariance(strata))
  near(uncorrected.riskDifference - 1.959964 * sd, 0.2281, 5e-5)
  near(uncorrected.riskDifference + 1.959964 * sd, 0.4307, 5e-5)
  assert.ok(cochranMantelHaenszel(strata).statistic < uncorrected.statistic, 'the correction shrinks the statistic')
  // One stratum: CMH is the (n - 1)/n-scaled Pearson chi-square, MH difference is p1 - p2.
  const one = cochranMantelHaenszel([{ a: 30, b: 70, c: 15, d: 85 }], { correct: false })
  const z = twoProportionZ(30, 100, 15, 100).z
  close(one.statistic, (z * z * 199) / 200, 1e-12)
  close(one.riskDifference, 0.15, 1e-12)
  // Swapping groups flips the difference and keeps the statistic.
  const swapped = cochranMantelHaenszel(strata.map(({ a, b, c, d }) => ({ a: c, b: d, c: a, d: b })))
  close(swapped.statistic, cochranMantelHaenszel(strata).statistic, 1e-12)
  close(swapped.riskDifference, -uncorrected.riskDifference, 1e-12)
  // No information: p = 1.
  assert.equal(cochranMantelHaenszel([{ a: 0, b: 10, c: 0, d: 10 }]).pValue, 1)
})

test('MH risk difference with Sato variance covers ~95% with many sparse strata', () => {
  // Sato's variance is consistent in the sparse-data limit, where Greenland-Robins' is not.
  const r = rng(2024)
  let covered = 0
  const runs = 400
  for (let t = 0; t < runs; t++) {
    const strata: Table2x2[] = []
    for (let s = 0; s < 150; s++) {
      const base = 0.1 + 0.6 * r()
      const a = binomialSample(3, base + 0.2, r)
      const c = binomialSample(3, base, r)
      strata.push({ a, b: 3 - a, c, d: 3 - c })
    }
    const [l, u] = cochranMantelHaenszel(strata).ci95
    if (l <= 0.2 && 0.2 <= u) covered++
  }
  const coverage = covered / runs
  assert.ok(coverage > 0.92 && coverage < 0.98, `coverage ${coverage}`)
})

test('chooseTest: Fisher when an expected cell is under 5, else z', () => {
  assert.equal(chooseTest(3, 1, 1, 3).test, 'fisher')
  assert.equal(chooseTest(2, 998, 9, 991).test, 'z') // smallest expected cell 1000 * 11 / 2000 = 5.5
  assert.equal(chooseTest(1, 999, 8, 992).test, 'fisher') // expected 4.5 < 5
  const big = chooseTest(300, 700, 200, 800)
  assert.equal(big.test, 'z')
  assert.equal(big.pValue, twoProportionZ(300, 1000, 200, 1000).pValue)
  assert.equal(chooseTest(1, 999, 8, 992).pValue, fisherExact(1, 999, 8, 992))
})

test('logFactorial is exact for small n and consistent for large n', () => {
  let exact = 0
  for (let n = 1; n <= 170; n++) {
    exact += Math.log(n)
    close(logFactorial(n) || 1e-300, exact || 1e-300, 1e-13, `ln ${n}!`)
  }
  close(logFactorial(1000000) - logFactorial(999999), Math.log(1000000), 1e-9)
})
