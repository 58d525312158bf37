/** @module Count statistics for diffs: exact and asymptotic tests on 2x2 tables, score intervals, BH q-values, McNemar and CMH; log-space so n up to 10^6 neither overflows nor underflows. */

/** The 97.5th percentile of the standard normal distribution (qnorm(0.975) to 16 digits). */
export const Z95 = 1.959963984540054

const LN_SQRT_2PI = 0.9189385332046728 // 0.5 * ln(2 pi)
const LN_2PI = 1.8378770664093453

// stirlerr(n) = ln(n!) - ln(sqrt(2 pi n) (n/e)^n) for n <= 15, from exact factorials (n! < 2^53).
const STIRLERR_SMALL = (() => {
  const t = new Float64Array(16)
  let f = 1
  for (let n = 1; n < 16; n++) {
    f *= n
    t[n] = Math.log(f) - (n + 0.5) * Math.log(n) + n - LN_SQRT_2PI
  }
  return t
})()

/** The error of Stirling's formula in log space, ln(n!) - ln(sqrt(2 pi n) (n/e)^n), for integer n >= 1. */
function stirlerr(n: number): number {
  if (n < 16) return STIRLERR_SMALL[n]
  const r2 = 1 / (n * n)
  // Series to 1/n^9: the next term is below 1e-16 from n = 16 on.
  return (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188)))) / n
}

/** Loader's deviance term x ln(x / np) + np - x, by a series where x is near np (no cancellation). */
function bd0(x: number, np: number): number {
  if (Math.abs(x - np) < 0.1 * (x + np)) {
    let v = (x - np) / (x + np)
    let s = (x - np) * v
    let ej = 2 * x * v
    v *= v
    for (let j = 1; j < 1000; j++) {
      ej *= v
      const s1 = s + ej / (2 * j + 1)
      if (s1 === s) return s1
      s = s1
    }
    return s
  }
  return x * Math.log(x / np) + np - x
}

/**
 * ln P(X = x) for X ~ Binomial(n, p), q = 1 - p, by Loader's saddle-point expansion (as R's dbinom):
 * relative accuracy ~1e-15 in the probability even for n ~ 10^6, where ln(n!) differences lose 9 digits.
 */
export function logBinomialPmf(x: number, n: number, p: number, q = 1 - p): number {
  if (x < 0 || x > n) return -Infinity
  if (p === 0) return x === 0 ? 0 : -Infinity
  if (q === 0) return x === n ? 0 : -Infinity
  if (x === 0) return n === 0 ? 0 : p < 0.1 ? -bd0(n, n * q) - n * p : n * Math.log(q)
  if (x === n) return q < 0.1 ? -bd0(n, n * p) - n * q : n * Math.log(p)
  const lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q)
  return lc - 0.5 * (LN_2PI + Math.log(x) + Math.log1p(-x / n))
}

/**
 * ln P(X = x) for the hypergeometric: x white balls among k drawn from m white and n black (R's
 * dhyper(x, m, n, k, log = TRUE)), as a ratio of binomial probabilities taken at p = k / (m + n).
 */
export function logHypergeometricPmf(x: number, m: number, n: number, k: number): number {
  if (x < Math.max(0, k - n) || x > Math.min(k, m)) return -Infinity
  if (k === 0) return x === 0 ? 0 : -Infinity
  const N = m + n
  const p = k / N
  const q = (N - k) / N
  return logBinomialPmf(x, m, p, q) + logBinomialPmf(k - x, n, p, q) - logBinomialPmf(k, N, p, q)
}

/** ln(n!) for a non-negative integer n. */
export function logFactorial(n: number): number {
  if (n < 2) return 0
  return stirlerr(n) + (n + 0.5) * Math.log(n) - n + LN_SQRT_2PI
}

/**
 * erfc(x), accurate to ~1e-15 relative over the whole range where it does not underflow (x < ~26.5).
 * Below 2: 1 - erf from erf's everywhere-positive series (no cancellation; loses at most ~2 digits,
 * since erfc(2) = 0.0047). From 2: the Laplace continued fraction, evaluated with modified Lentz, with
 * exp(-x^2) split as in Cody's CALERF so that the rounding of x^2 does not cost digits in the far tail.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN
  if (x < 0) return 2 - erfc(-x)
  if (x < 2) return 1 - erfSeries(x)
  if (x > 27.3) return 0
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  const tiny = 1e-300
  let f = x
  let C = x
  let D = 0
  for (let n = 1; n < 5000; n++) {
    const an = n / 2
    D = x + an * D
    D = D === 0 ? 1 / tiny : 1 / D
    C = x + an / C
    if (C === 0) C = tiny
    const delta = C * D
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  const xs = Math.trunc(x * 16) / 16
  const expNegX2 = Math.exp(-xs * xs) * Math.exp(-(x - xs) * (x + xs))
  return expNegX2 / (f * Math.sqrt(Math.PI))
}

/** erf(x) = 2x/sqrt(pi) e^{-x^2} sum_n (2x^2)^n / (1*3*...*(2n+1)): all terms positive. */
function erfSeries(x: number): number {
  const x2 = x * x
  let term = 1
  let sum = 1
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1)
    sum += term
    if (term < sum * 1e-17) break
  }
  return ((2 * x) / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum
}

/** Upper tail of the chi-square distribution with 1 degree of freedom. */
export function chiSquare1Tail(statistic: number): number {
  if (!(statistic > 0)) return 1
  return erfc(Math.sqrt(statistic / 2))
}

/** Two-sided normal p-value 2 * (1 - Phi(|z|)). */
export function normalTwoSided(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2)
}

// R's fisher.test and binom.test count a table as "no more likely" within this relative tolerance,
// so that tables whose probabilities are equal in exact arithmetic are not split by rounding.
const LOG_REL_TOLERANCE = Math.log1p(1e-7)
// A walk away from the mode stops this far (in nats) below both the mode and the observed table: the
// hypergeometric and binomial are log-concave, so what is left is below e^-60 * n relative.
const NEGLIGIBLE = 60

/**
 * Fisher's exact test, two-sided, for the 2x2 table [[a, b], [c, d]]: the probability, under the
 * hypergeometric null with all margins fixed, of tables no more likely than the observed one (as
 * R's fisher.test). Computed in log space from the mode outwards, so it neither overflows for large n
 * nor returns 0 while the p-value is still representable.
 */
export function fisherExact(a: number, b: number, c: number, d: number): number {
  const m = a + c // first column total
  const n = b + d
  const k = a + b // first row total
  const N = m + n
  const lo = Math.max(0, k - n)
  const hi = Math.min(k, m)
  if (lo === hi) return 1
  const logPmf = (x: number) => logHypergeometricPmf(x, m, n, k)
  const observed = logPmf(a)
  const threshold = observed + LOG_REL_TOLERANCE
  const mode = Math.min(hi, Math.max(lo, Math.floor(((k + 1) * (m + 1)) / (N + 2))))
  const modeLog = logPmf(mode)
  // Sums are kept relative to the mode (total) and to the observed table (tail): no term exceeds
  // 1 + 1e-7 in its own scale, so nothing overflows and a tiny p keeps its digits.
  let total = 0
  let tail = 0
  const floor = Math.min(modeLog, observed) - NEGLIGIBLE
  const add = (l: number) => {
    total += Math.exp(l - modeLog)
    if (l <= threshold) tail += Math.exp(l - observed)
  }
  for (let x = mode; x >= lo; x--) {
    const l = x === mode ? modeLog : logPmf(x)
    add(l)
    if (l < floor) break
  }
  for (let x = mode + 1; x <= hi; x++) {
    const l = logPmf(x)
    add(l)
    if (l < floor) break
  }
  return Math.min(1, Math.exp(observed - modeLog + Math.log(tail) - Math.log(total)))
}

export interface ZTest {
  z: number
  pValue: number
}

/** Pooled two-proportion z-test of x1/n1 against x2/n2, two-sided (z^2 is Pearson's uncorrected chi-square). */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): ZTest {
  if (n1 === 0 || n2 === 0) return { z: 0, pValue: 1 }
  const pooled = (x1 + x2) / (n1 + n2)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
  if (!(se > 0)) return { z: 0, pValue: 1 }
  const z = (x1 / n1 - x2 / n2) / se
  return { z, pValue: normalTwoSided(z) }
}

/** Wilson score interval for x successes out of n ([0, 1] when n = 0). */
export function wilsonInterval(x: number, n: number, z = Z95): [number, number] {
  if (n === 0) return [0, 1]
  const z2 = z * z
  const p = x / n
  const centre = (x + z2 / 2) / (n + z2)
  const half = (z / (n + z2)) * Math.sqrt(n * p * (1 - p) + z2 / 4)
  return [x === 0 ? 0 : Math.max(0, centre - half), x === n ? 1 : Math.min(1, centre + half)]
}

/**
 * Newcombe's hybrid score interval (1998, method 10) for p1 - p2 with independent samples: the
 * distances from each proportion to its Wilson limits are combined in quadrature.
 */
export function newcombeDifferenceInterval(x1: number, n1: number, x2: number, n2: number, z = Z95): [number, number] {
  const p1 = n1 ? x1 / n1 : 0
  const p2 = n2 ? x2 / n2 : 0
  const [l1, u1] = wilsonInterval(x1, n1, z)
  const [l2, u2] = wilsonInterval(x2, n2, z)
  const d = p1 - p2
  const lower = d - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
  const upper = d + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
  return [Math.max(-1, lower), Math.min(1, upper)]
}

/**
 * Benjamini-Hochberg q-values: q_(i) = min over j >= i of m p_(j) / j, capped at 1, in the input order.
 * NaN p-values are treated as 1.
 */
export function benjaminiHochberg(pValues: Float64Array): Float64Array {
  const m = pValues.length
  const q = new Float64Array(m)
  if (m === 0) return q
  // Tied p-values get the same q whichever order they are ranked in (over a run of ties the running minimum is set
  // at the run's highest rank), so the values alone are sorted, natively, with no comparator: sorting 16k indices
  // through a comparator cost tens of ms of not-yet-optimized JavaScript in a fresh process's first diff.
  const sorted = new Float64Array(m)
  for (let i = 0; i < m; i++) sorted[i] = Number.isNaN(pValues[i]) ? 1 : pValues[i]
  sorted.sort()
  const atRank = new Float64Array(m)
  let running = 1
  for (let r = m - 1; r >= 0; r--) {
    running = Math.min(running, (sorted[r] * m) / (r + 1))
    atRank[r] = running
  }
  for (let i = 0; i < m; i++) {
    const p = Number.isNaN(pValues[i]) ? 1 : pValues[i]
    let lo = 0
    let hi = m - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (sorted[mid] < p) lo = mid + 1
      else hi = mid
    }
    q[i] = atRank[lo]
  }
  return q
}

/**
 * McNemar's exact test: a two-sided exact binomial test (p = 1/2) of b against c, the pairs where only
 * the first or only the second member is positive. Equals R's binom.test(b, b + c) and
 * mcnemar.exact; 1 when there are no discordant pairs.
 */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c
  if (n === 0 || b === c) return 1
  const k = Math.min(b, c)
  const logTerm = (i: number) => logBinomialPmf(i, n, 0.5, 0.5)
  // Terms fall geometrically away from the centre, so the lower tail is summed from k down.
  const top = logTerm(k)
  let tail = 0 // relative to the largest term, P(X = k)
  for (let i = k; i >= 0; i--) {
    const l = i === k ? top : logTerm(i)
    tail += Math.exp(l - top)
    if (l < top - NEGLIGIBLE) break
  }
  return Math.min(1, Math.exp(Math.LN2 + top + Math.log(tail)))
}

/**
 * Newcombe's interval for the difference of paired proportions (1998b, method 10: Wilson limits of both
 * marginal proportions combined with the continuity-corrected phi correlation). The table is
 * e = both positive, f = first only, g = second only, h = neither; the difference is (f - g) / n.
 */
export function newcombePairedInterval(e: number, f: number, g: number, h: number, z = Z95): [number, number] {
  const n = e + f + g + h
  if (n === 0) return [-1, 1]
  const p1 = (e + f) / n
  const p2 = (e + g) / n
  const [l1, u1] = wilsonInterval(e + f, n, z)
  const [l2, u2] = wilsonInterval(e + g, n, z)
  const margins = (e + f) * (g + h) * (e + g) * (f + h)
  let phi = 0
  if (margins > 0) {
    const cross = e * h - f * g
    const corrected = cross > n / 2 ? cross - n / 2 : cross < 0 ? cross : 0
    phi = corrected / Math.sqrt(margins)
  }
  const d = p1 - p2
  const dl1 = p1 - l1
  const du1 = u1 - p1
  const dl2 = p2 - l2
  const du2 = u2 - p2
  const lower = d - Math.sqrt(Math.max(0, dl1 * dl1 - 2 * phi * dl1 * du2 + du2 * du2))
  const upper = d + Math.sqrt(Math.max(0, du1 * du1 - 2 * phi * du1 * dl2 + dl2 * dl2))
  return [Math.max(-1, lower), Math.min(1, upper)]
}

export interface PairedTest {
  difference: number
  ci95: [number, number]
  pValue: number
}

/** McNemar's exact p with the paired difference (f - g) / n and Newcombe's paired interval. */
export function pairedProportions(e: number, f: number, g: number, h: number, z = Z95): PairedTest {
  const n = e + f + g + h
  return { difference: n ? (f - g) / n : 0, ci95: newcombePairedInterval(e, f, g, h, z), pValue: mcnemarExact(f, g) }
}

/** One stratum's 2x2 table: rows are the groups (a, b: first group positive, negative; c, d: second group). */
export interface Table2x2 {
  a: number
  b: number
  c: number
  d: number
}

export interface CmhResult {
  /** CMH chi-square (1 df), with Yates' 0.5 correction unless turned off (as R's mantelhaen.test). */
  statistic: number
  pValue: number
  /** Mantel-Haenszel common risk difference, first group minus second. */
  riskDifference: number
  /** Its variance: Sato (1989), consistent both for many sparse strata and for few large ones. */
  variance: number
  ci95: [number, number]
}

/**
 * Cochran-Mantel-Haenszel test and Mantel-Haenszel risk difference over K strata held in four parallel
 * arrays (cells of stratum s at offset + s): the typed-array form used per latent on the hot path.
 * Strata with fewer than 2 documents carry no information and are skipped.
 */
export function cmhArrays(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c: ArrayLike<number>,
  d: ArrayLike<number>,
  offset: number,
  strata: number,
  options: { correct?: boolean; z?: number } = {}
): CmhResult {
  const correct = options.correct ?? true
  const z = options.z ?? Z95
  let delta = 0
  let varSum = 0
  let rdNum = 0
  let weight = 0
  let satoP = 0
  let satoQ = 0
  for (let s = offset; s < offset + strata; s++) {
    const as = a[s],
      bs = b[s],
      cs = c[s],
      ds = d[s]
    const n1 = as + bs
    const n2 = cs + ds
    const n = n1 + n2
    if (n < 2) continue
    const m1 = as + cs
    const m2 = bs + ds
    delta += as - (n1 * m1) / n
    varSum += (n1 * n2 * m1 * m2) / (n * n * (n - 1))
    rdNum += (as * n2 - cs * n1) / n
    weight += (n1 * n2) / n
    satoP += (n1 * n1 * cs - n2 * n2 * as + (n1 * n2 * (n2 - n1)) / 2) / (n * n)
    satoQ += (as * (n2 - cs) + cs * (n1 - as)) / (2 * n)
  }
  let statistic = 0
  if (varSum > 0) {
    const yates = correct && Math.abs(delta) >= 0.5 ? 0.5 : 0
    statistic = (Math.abs(delta) - yates) ** 2 / varSum
  }
  const riskDifference = weight > 0 ? rdNum / weight : 0
  const variance = weight > 0 ? Math.max(0, (riskDifference * satoP + satoQ) / (weight * weight)) : Infinity
  const half = z * Math.sqrt(variance)
  return {
    statistic,
    pValue: chiSquare1Tail(statistic),
    riskDifference,
    variance,
    ci95: [Math.max(-1, riskDifference - half), Math.min(1, riskDifference + half)]
  }
}

/** Cochran-Mantel-Haenszel chi-square and Mantel-Haenszel risk difference (see cmhArrays). */
export function cochranMantelHaenszel(strata: Table2x2[], options: { correct?: boolean; z?: number } = {}): CmhResult {
  const k = strata.length
  const a = new Float64Array(k),
    b = new Float64Array(k),
    c = new Float64Array(k),
    d = new Float64Array(k)
  for (let s = 0; s < k; s++) ({ a: a[s], b: b[s], c: c[s], d: d[s] } = strata[s])
  return cmhArrays(a, b, c, d, 0, k, options)
}

/**
 * Greenland-Robins (1985) variance of the Mantel-Haenszel risk difference: consistent for a few large
 * strata only; kept to check the estimate against published Wald intervals.
 */
export function greenlandRobinsRiskDifferenceVariance(strata: Table2x2[]): number {
  let num = 0
  let weight = 0
  for (const { a, b, c, d } of strata) {
    const n1 = a + b
    const n2 = c + d
    const n = n1 + n2
    if (n1 === 0 || n2 === 0) continue
    num += (a * b * n2 ** 3 + c * d * n1 ** 3) / (n1 * n2 * n * n)
    weight += (n1 * n2) / n
  }
  return weight > 0 ? num / (weight * weight) : Infinity
}

export type TwoByTwoTest = 'fisher' | 'z'

/**
 * The test for a 2x2 table [[a, b], [c, d]] (rows are groups): Fisher's exact test when any expected
 * cell count is under 5 (the usual rule for the chi-square/z approximation), else the pooled z-test.
 */
export function chooseTest(a: number, b: number, c: number, d: number): { test: TwoByTwoTest; pValue: number } {
  const n = a + b + c + d
  const minExpected = n > 0 ? (Math.min(a + b, c + d) * Math.min(a + c, b + d)) / n : 0
  if (minExpected < 5) return { test: 'fisher', pValue: fisherExact(a, b, c, d) }
  return { test: 'z', pValue: twoProportionZ(a, a + b, c, c + d).pValue }
}
