/** @module The data diff: latents present more often in dataset A than in B, with a test, an interval and a BH q-value per latent, for independent, paired and length-stratified designs. */
import type { DiffLatent } from '../contract/diff.ts'
import type { PooledCsr } from './sparse.ts'
import { benjaminiHochberg, chooseTest, cmhArrays, newcombeDifferenceInterval, pairedProportions } from './stats.ts'

export interface DiffOptions {
  limit: number
  /** Coverage masks: a latent is tested when minFrequency <= max(fA, fB) <= maxFrequency. */
  minFrequency: number
  maxFrequency: number
  metric: 'absolute' | 'relative'
  direction: 'a' | 'b' | 'both'
  /** Latents always reported, whether or not they make the top `limit` or pass the masks. */
  latents?: number[]
}

/** One dataset's presence counts: counts[latent] = documents in which the latent is present. */
export interface DiffCounts {
  id: string
  name: string
  documents: number
  counts: Int32Array
}

export interface DiffOutput {
  /** Size of the Benjamini-Hochberg family: latents present somewhere that pass the coverage masks. */
  tested: number
  latents: DiffLatent[]
  /** Paired design: the number of matched pairs the frequencies are taken over. */
  pairs?: number
}

type Labels = ArrayLike<string | null | undefined>

const TESTS = ['fisher', 'z', 'mcnemar', 'cmh'] as const
const FISHER = 0,
  Z = 1,
  MCNEMAR = 2,
  CMH = 3

/**
 * Per-latent results of one design, column by column. Every design fills `freqA`, `freqB`, the counts
 * and `against` for all latents in one pass; `evaluate(latent)` then fills the test columns, and is
 * only called for the latents that are tested or listed.
 */
interface Columns {
  countA: Int32Array
  countB: Int32Array
  freqA: Float64Array
  freqB: Float64Array
  /** Index into `againstIds` of the b the latent was compared with. */
  against: Int32Array
  againstIds: string[]
  /** The design's estimate of fA - fB (for the stratified design, the Mantel-Haenszel risk difference). */
  effect: Float64Array
  lower: Float64Array
  upper: Float64Array
  pValue: Float64Array
  test: Uint8Array
}

function columns(nLatents: number, againstIds: string[]): Columns {
  return {
    countA: new Int32Array(nLatents),
    countB: new Int32Array(nLatents),
    freqA: new Float64Array(nLatents),
    freqB: new Float64Array(nLatents),
    against: new Int32Array(nLatents),
    againstIds,
    effect: new Float64Array(nLatents),
    lower: new Float64Array(nLatents),
    upper: new Float64Array(nLatents),
    pValue: new Float64Array(nLatents).fill(1),
    test: new Uint8Array(nLatents)
  }
}

function checkListed(listed: number[] | undefined, nLatents: number): void {
  for (const l of listed ?? []) {
    if (!Number.isInteger(l) || l < 0 || l >= nLatents)
      throw new RangeError(`latent ${l} does not exist (latents are 0-${nLatents - 1})`)
  }
}

/**
 * Masks, BH, ranking and the report rows, shared by the three designs.
 *
 * The BH family is the latents *under consideration*: present in at least one document of A or B
 * (max(fA, fB) > 0) and inside the coverage masks, minFrequency <= max(fA, fB) <= maxFrequency. A
 * latent that never fires has p = 1 by construction, so counting it would only inflate every q-value
 * by the number of dead latents of the SAE, which says nothing about these datasets. The masks are on
 * max(fA, fB), not, as in the paper's code, min(fA, fB) >= minCoverage: a min mask would drop exactly
 * the latents present in A and absent from B, the strongest differences.
 */
/**
 * The first `k` latents of `family` by key (descending), then p-value, then latent: what sorting all of `family` with
 * that comparator gives, from one pass that keeps the k best in order (a comparator sort of 16k latents cost tens of
 * ms of not-yet-optimized JavaScript in a fresh process's first diff, to report 50). NaN keys or p-values would make
 * the comparator inconsistent, so they, and a k close to the family's size, take the full sort as before.
 */
function rankedFirst(family: Int32Array, k: number, key: Float64Array, pValue: Float64Array): Int32Array {
  const before = (x: number, y: number) => key[y] - key[x] || pValue[x] - pValue[y] || x - y
  if (k <= 0) return new Int32Array(0)
  let consistent = k * 8 < family.length
  for (let i = 0; i < family.length && consistent; i++)
    if (Number.isNaN(key[family[i]]) || Number.isNaN(pValue[family[i]])) consistent = false
  if (!consistent) return family.slice().sort(before).subarray(0, k)
  const top = new Int32Array(k)
  let n = 0
  for (let i = 0; i < family.length; i++) {
    const l = family[i]
    if (n === k && !(before(l, top[k - 1]) < 0)) continue
    let at = n < k ? n++ : k - 1
    while (at > 0 && before(l, top[at - 1]) < 0) {
      top[at] = top[at - 1]
      at--
    }
    top[at] = l
  }
  return top
}

function report(
  cols: Columns,
  nLatents: number,
  labels: Labels,
  options: DiffOptions,
  evaluate: (latent: number) => void
): DiffOutput {
  checkListed(options.latents, nLatents)
  const { freqA, freqB } = cols
  const testedMask = new Uint8Array(nLatents)
  let tested = 0
  for (let l = 0; l < nLatents; l++) {
    const top = Math.max(freqA[l], freqB[l])
    if (top > 0 && top >= options.minFrequency && top <= options.maxFrequency) {
      testedMask[l] = 1
      tested++
    }
  }
  const family = new Int32Array(tested)
  for (let l = 0, i = 0; l < nLatents; l++) if (testedMask[l]) family[i++] = l
  for (let i = 0; i < tested; i++) evaluate(family[i])
  const familyP = new Float64Array(tested)
  for (let i = 0; i < tested; i++) familyP[i] = cols.pValue[family[i]]
  const q = benjaminiHochberg(familyP)
  const qValue = new Float64Array(nLatents).fill(NaN)
  for (let i = 0; i < tested; i++) qValue[family[i]] = q[i]

  const difference = (l: number): number => {
    if (options.metric === 'absolute') return cols.effect[l]
    const top = Math.max(freqA[l], freqB[l])
    return top > 0 ? cols.effect[l] / top : 0
  }
  const key = new Float64Array(nLatents)
  for (let i = 0; i < tested; i++) {
    const l = family[i]
    const d = difference(l)
    key[l] = options.direction === 'a' ? d : options.direction === 'b' ? -d : Math.abs(d)
  }
  const reported = Array.from(rankedFirst(family, Math.min(options.limit, tested), key, cols.pValue))
  const seen = new Set(reported)
  for (const l of options.latents ?? []) {
    if (seen.has(l)) continue
    seen.add(l)
    if (!testedMask[l]) evaluate(l)
    reported.push(l)
  }
  const latents = reported.map(
    (l): DiffLatent => ({
      latent: l,
      label: labels[l] ?? null,
      frequencyA: freqA[l],
      frequencyB: freqB[l],
      countA: cols.countA[l],
      countB: cols.countB[l],
      against: cols.againstIds[cols.against[l]],
      againstIndex: cols.against[l],
      difference: difference(l),
      ci95: [cols.lower[l], cols.upper[l]],
      pValue: cols.pValue[l],
      qValue: Number.isNaN(qValue[l]) ? null : qValue[l],
      test: TESTS[cols.test[l]]
    })
  )
  return { tested, latents }
}

/**
 * Independent samples (the paper's diff): for each latent, B is the b in which it is most frequent
 * (ties: the first listed); Fisher's exact test when an expected cell is under 5, else the pooled
 * z-test; Newcombe's hybrid score interval on fA - fB.
 */
export function diffLatents(input: {
  a: DiffCounts
  b: DiffCounts[]
  labels: Labels
  options: DiffOptions
}): DiffOutput {
  const { a, b, labels, options } = input
  if (b.length === 0) throw new RangeError('diff needs at least one b dataset')
  const nLatents = a.counts.length
  for (const side of b) {
    if (side.counts.length !== nLatents)
      throw new RangeError(`dataset ${side.id} has ${side.counts.length} latents, ${a.id} has ${nLatents}`)
  }
  const cols = columns(
    nLatents,
    b.map(s => s.id)
  )
  const nA = a.documents
  for (let l = 0; l < nLatents; l++) {
    let best = 0
    let bestFreq = -1
    for (let j = 0; j < b.length; j++) {
      const f = b[j].documents > 0 ? b[j].counts[l] / b[j].documents : 0
      if (f > bestFreq) {
        bestFreq = f
        best = j
      }
    }
    cols.against[l] = best
    cols.countA[l] = a.counts[l]
    cols.countB[l] = b[best].counts[l]
    cols.freqA[l] = nA > 0 ? a.counts[l] / nA : 0
    cols.freqB[l] = bestFreq
    cols.effect[l] = cols.freqA[l] - bestFreq
  }
  return report(cols, nLatents, labels, options, l => {
    const xA = cols.countA[l]
    const xB = cols.countB[l]
    const nB = b[cols.against[l]].documents
    const { test, pValue } = chooseTest(xA, nA - xA, xB, nB - xB)
    const [lo, hi] = newcombeDifferenceInterval(xA, nA, xB, nB)
    cols.pValue[l] = pValue
    cols.test[l] = test === 'fisher' ? FISHER : Z
    cols.lower[l] = lo
    cols.upper[l] = hi
  })
}

/** What the paired design counts per latent: pairs with it in A, in B, and in both, out of `pairs`. */
export interface PairedCounts {
  countA: Int32Array
  countB: Int32Array
  both: Int32Array
  pairs: number
}

/**
 * The paired counts from the documents' latents: pair i is row rowsA[i] of A with row rowsB[i] of B (each row in one
 * pair at most).
 */
export function pairedCounts(a: PooledCsr, b: PooledCsr, rowsA: Int32Array, rowsB: Int32Array): PairedCounts {
  if (rowsA.length !== rowsB.length) throw new RangeError(`rowsA has ${rowsA.length} rows, rowsB ${rowsB.length}`)
  if (a.nLatents !== b.nLatents) throw new RangeError(`A has ${a.nLatents} latents, B has ${b.nLatents}`)
  const nLatents = a.nLatents
  const pairs = rowsA.length
  const countA = new Int32Array(nLatents)
  const countB = new Int32Array(nLatents)
  const both = new Int32Array(nLatents)
  // stamp[l] = 1 + the pair whose A row last had latent l: "present in both" without merging rows.
  const stamp = new Int32Array(nLatents)
  for (let i = 0; i < pairs; i++) {
    const ra = rowsA[i]
    const rb = rowsB[i]
    if (ra < 0 || ra >= a.nDocs || rb < 0 || rb >= b.nDocs)
      throw new RangeError(`pair ${i} (${ra}, ${rb}) is out of range`)
    for (let k = a.indptr[ra]; k < a.indptr[ra + 1]; k++) {
      if (a.values[k] > 0) {
        const l = a.latents[k]
        countA[l]++
        stamp[l] = i + 1
      }
    }
    for (let k = b.indptr[rb]; k < b.indptr[rb + 1]; k++) {
      if (b.values[k] > 0) {
        const l = b.latents[k]
        countB[l]++
        if (stamp[l] === i + 1) both[l]++
      }
    }
  }
  return { countA, countB, both, pairs }
}

/**
 * Paired design (the same prompts answered by two models): pair i is row rowsA[i] of A with row
 * rowsB[i] of B. Per latent, f = pairs where it is present in A only and g = in B only; McNemar's
 * exact test on (f, g), difference = (f - g) / pairs with Newcombe's paired interval (method 10).
 * Frequencies are over the matched pairs, so frequencyA - frequencyB is the difference.
 */
export function diffPaired(input: {
  a: PooledCsr
  b: PooledCsr
  rowsA: Int32Array
  rowsB: Int32Array
  labels: Labels
  against: string
  options: DiffOptions
}): DiffOutput {
  const { a, b, rowsA, rowsB, ...rest } = input
  return diffPairedCounts({ counts: pairedCounts(a, b, rowsA, rowsB), ...rest })
}

/** The paired design's statistics from its counts (however they were counted). */
export function diffPairedCounts(input: {
  counts: PairedCounts
  labels: Labels
  against: string
  options: DiffOptions
}): DiffOutput {
  const { counts, labels, options } = input
  const { pairs, both } = counts
  const nLatents = counts.countA.length
  const cols = columns(nLatents, [input.against])
  cols.countA.set(counts.countA)
  cols.countB.set(counts.countB)
  for (let l = 0; l < nLatents; l++) {
    cols.freqA[l] = pairs ? cols.countA[l] / pairs : 0
    cols.freqB[l] = pairs ? cols.countB[l] / pairs : 0
    cols.effect[l] = cols.freqA[l] - cols.freqB[l]
  }
  const out = report(cols, nLatents, labels, options, l => {
    const e = both[l]
    const f = cols.countA[l] - e
    const g = cols.countB[l] - e
    const r = pairedProportions(e, f, g, pairs - e - f - g)
    cols.pValue[l] = r.pValue
    cols.test[l] = MCNEMAR
    cols.lower[l] = r.ci95[0]
    cols.upper[l] = r.ci95[1]
  })
  return { ...out, pairs }
}

/**
 * Length strata from the pooled token counts of A and B: edges at the 1/k, ..., (k-1)/k quantiles
 * (lower order statistics), and stratum(t) = the number of edges below t. Ties at an edge fall into the
 * lower stratum, so heavily tied lengths (say, many documents truncated at max tokens) can leave some
 * strata empty; an empty stratum simply contributes nothing.
 */
export function lengthStrata(
  tokensA: ArrayLike<number>,
  tokensB: ArrayLike<number>,
  k = 5
): { edges: Float64Array; strataA: Uint8Array; strataB: Uint8Array } {
  if (!(k >= 1 && k <= 255)) throw new RangeError(`strata must be 1-255, got ${k}`)
  const n = tokensA.length + tokensB.length
  const pooled = new Float64Array(n)
  pooled.set(tokensA as ArrayLike<number>, 0)
  pooled.set(tokensB as ArrayLike<number>, tokensA.length)
  pooled.sort()
  const edges = new Float64Array(Math.max(0, k - 1))
  for (let j = 1; j < k; j++) edges[j - 1] = n ? pooled[Math.max(0, Math.ceil((j * n) / k) - 1)] : 0
  const assign = (t: ArrayLike<number>) => {
    const out = new Uint8Array(t.length)
    for (let i = 0; i < t.length; i++) {
      let s = 0
      while (s < edges.length && t[i] > edges[s]) s++
      out[i] = s
    }
    return out
  }
  return { edges, strataA: assign(tokensA), strataB: assign(tokensB) }
}

/**
 * Length-controlled design: max pooling makes presence grow with document length, so a latent can look
 * different between datasets only because one has longer documents. Documents of A and B are put into
 * token-count quintiles (edges from the pooled counts, see lengthStrata); per latent, one 2x2 table per
 * stratum gives the Cochran-Mantel-Haenszel test (with continuity correction) and the Mantel-Haenszel
 * risk difference with Sato's variance, reported as `difference` and `ci95`. frequencyA and frequencyB
 * stay the unstratified shares; the relative metric divides the MH risk difference by their max.
 */
export function diffLengthControlled(input: {
  a: PooledCsr
  b: PooledCsr
  tokensA: ArrayLike<number>
  tokensB: ArrayLike<number>
  labels: Labels
  against: string
  options: DiffOptions
  strata?: number
}): DiffOutput {
  const { a, b, tokensA, tokensB, strata, ...rest } = input
  if (a.nLatents !== b.nLatents) throw new RangeError(`A has ${a.nLatents} latents, B has ${b.nLatents}`)
  if (tokensA.length !== a.nDocs || tokensB.length !== b.nDocs) {
    throw new RangeError(
      `token counts (${tokensA.length}, ${tokensB.length}) do not match documents (${a.nDocs}, ${b.nDocs})`
    )
  }
  const K = strata ?? 5
  const { strataA, strataB } = lengthStrata(tokensA, tokensB, K)
  return diffStratifiedCounts({ counts: stratumCounts(a, b, strataA, strataB, K), ...rest })
}

/** What a stratified design counts: documents per stratum, and per latent and stratum those with the latent. */
export interface StratumCounts {
  strata: number
  sizeA: Float64Array
  sizeB: Float64Array
  /** presentA[latent * strata + stratum]: latent-major so each latent's tables sit together. */
  presentA: Int32Array
  presentB: Int32Array
}

/** The stratified counts from the documents' latents, document i of A in stratum strataA[i] (of B, strataB[i]). */
export function stratumCounts(
  a: PooledCsr,
  b: PooledCsr,
  strataA: Uint8Array,
  strataB: Uint8Array,
  K: number
): StratumCounts {
  const counts: StratumCounts = {
    strata: K,
    sizeA: new Float64Array(K),
    sizeB: new Float64Array(K),
    presentA: new Int32Array(a.nLatents * K),
    presentB: new Int32Array(b.nLatents * K)
  }
  const count = (m: PooledCsr, strata: Uint8Array, size: Float64Array, present: Int32Array) => {
    for (let i = 0; i < m.nDocs; i++) {
      const s = strata[i]
      size[s]++
      for (let k = m.indptr[i]; k < m.indptr[i + 1]; k++) if (m.values[k] > 0) present[m.latents[k] * K + s]++
    }
  }
  count(a, strataA, counts.sizeA, counts.presentA)
  count(b, strataB, counts.sizeB, counts.presentB)
  return counts
}

/** The length-controlled design's statistics (CMH test, MH risk difference) from its stratified counts. */
export function diffStratifiedCounts(input: {
  counts: StratumCounts
  labels: Labels
  against: string
  options: DiffOptions
}): DiffOutput {
  const { labels, options } = input
  const { strata: K, sizeA, sizeB, presentA, presentB } = input.counts
  const nLatents = presentA.length / K
  let nDocsA = 0
  let nDocsB = 0
  for (let s = 0; s < K; s++) {
    nDocsA += sizeA[s]
    nDocsB += sizeB[s]
  }
  const cols = columns(nLatents, [input.against])
  for (let l = 0; l < nLatents; l++) {
    let ca = 0
    let cb = 0
    for (let s = 0; s < K; s++) {
      ca += presentA[l * K + s]
      cb += presentB[l * K + s]
    }
    cols.countA[l] = ca
    cols.countB[l] = cb
    cols.freqA[l] = nDocsA ? ca / nDocsA : 0
    cols.freqB[l] = nDocsB ? cb / nDocsB : 0
  }
  const ta = new Float64Array(K),
    tb = new Float64Array(K),
    tc = new Float64Array(K),
    td = new Float64Array(K)
  return report(cols, nLatents, labels, options, l => {
    for (let s = 0; s < K; s++) {
      ta[s] = presentA[l * K + s]
      tb[s] = sizeA[s] - ta[s]
      tc[s] = presentB[l * K + s]
      td[s] = sizeB[s] - tc[s]
    }
    const r = cmhArrays(ta, tb, tc, td, 0, K)
    cols.effect[l] = r.riskDifference
    cols.pValue[l] = r.pValue
    cols.test[l] = CMH
    cols.lower[l] = r.ci95[0]
    cols.upper[l] = r.ci95[1]
  })
}
