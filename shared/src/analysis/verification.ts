/** @module The statistics of hypothesis verification: judge YES counts in A and B -> verified difference, interval, p-value, multiple-testing correction and validity. */
import { chooseTest, newcombeDifferenceInterval, type TwoByTwoTest } from './stats.ts'

/** A judge's tally for one hypothesis: documents answered YES out of those judged, per side (failed judgements left out). */
export interface VerificationCounts {
  yesA: number
  nA: number
  yesB: number
  nB: number
}

export type Correction = 'holm' | 'bonferroni'

export interface VerificationOptions {
  /** Family-wise error rate for the corrected test (default 0.05). */
  alpha?: number
  correction?: Correction
  /** The paper's validity threshold on the verified difference (default 0.01, one percentage point). */
  minDifference?: number
}

export interface VerificationStat {
  /** Share YES in A minus share YES in B. */
  difference: number
  shareA: number
  shareB: number
  /** Newcombe's hybrid score (Wilson) 95% interval on the difference. */
  ci95: [number, number]
  /** Fisher's exact test when an expected cell is under 5, else the pooled two-proportion z-test (two-sided). */
  pValue: number
  test: TwoByTwoTest
  /** The p-value adjusted for the family of hypotheses verified together (Holm or Bonferroni), capped at 1. */
  adjustedPValue: number
  /** The corrected test rejects "no difference" at alpha. */
  significant: boolean
  /**
   * The paper's validity: the verified difference exceeds minDifference (1 point). This is a reading of the point
   * estimate, as in the paper (Jiang et al. 2025 call a hypothesis valid when share YES in A - share YES in B > 1%);
   * we keep that reading so our validity rates compare with theirs, and report `significant` and `ci95` beside it
   * because on 50-document samples a 1-point difference is well inside noise.
   */
  valid: boolean
  /** Valid and significant, and the whole interval is above minDifference: the strict reading. */
  confirmed: boolean
}

/** Holm's step-down adjusted p-values (input order kept); NaN counts as 1. */
export function holmAdjust(pValues: ArrayLike<number>): Float64Array {
  const m = pValues.length
  const p = (i: number) => (Number.isNaN(pValues[i]) ? 1 : pValues[i])
  const order = Array.from({ length: m }, (_, i) => i).sort((x, y) => p(x) - p(y) || x - y)
  const out = new Float64Array(m)
  let running = 0
  order.forEach((i, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p(i)))
    out[i] = running
  })
  return out
}

export function bonferroniAdjust(pValues: ArrayLike<number>): Float64Array {
  const m = pValues.length
  return Float64Array.from(pValues, v => Math.min(1, (Number.isNaN(v) ? 1 : v) * m))
}

/** Statistics for each hypothesis of one verification run (the family for the correction is this list). */
export function verificationStatistics(
  counts: readonly VerificationCounts[],
  options: VerificationOptions = {}
): VerificationStat[] {
  const alpha = options.alpha ?? 0.05
  const minDifference = options.minDifference ?? 0.01
  const base = counts.map(({ yesA, nA, yesB, nB }) => {
    for (const [name, v] of [
      ['yesA', yesA],
      ['nA', nA],
      ['yesB', yesB],
      ['nB', nB]
    ] as const) {
      if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`${name} must be a non-negative integer, got ${v}`)
    }
    if (yesA > nA || yesB > nB)
      throw new RangeError(`YES counts exceed the documents judged (${yesA}/${nA}, ${yesB}/${nB})`)
    const shareA = nA ? yesA / nA : 0
    const shareB = nB ? yesB / nB : 0
    // With no judged document on a side there is nothing to test: p = 1 and the widest interval.
    const { test, pValue } =
      nA && nB ? chooseTest(yesA, nA - yesA, yesB, nB - yesB) : { test: 'fisher' as const, pValue: 1 }
    const ci95: [number, number] = nA && nB ? newcombeDifferenceInterval(yesA, nA, yesB, nB) : [-1, 1]
    return { difference: shareA - shareB, shareA, shareB, ci95, pValue, test }
  })
  const adjusted =
    (options.correction ?? 'holm') === 'holm'
      ? holmAdjust(base.map(b => b.pValue))
      : bonferroniAdjust(base.map(b => b.pValue))
  return base.map((b, i) => {
    const significant = adjusted[i] < alpha
    const valid = b.difference > minDifference
    return {
      ...b,
      adjustedPValue: adjusted[i],
      significant,
      valid,
      confirmed: valid && significant && b.ci95[0] > minDifference
    }
  })
}
