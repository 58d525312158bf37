/** @module Tests of the data diff on synthetic sparse datasets with planted signals. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { diffLatents, diffLengthControlled, diffPaired, lengthStrata, type DiffOptions } from './diff.ts'
import { presenceCounts, type PooledCsr } from './sparse.ts'
import { benjaminiHochberg } from './stats.ts'
import { mulberry32 as rng } from '../util/random.ts'

/** A CSR whose entry (doc, latent) is present when present(doc, latent) says so; values are positive. */
function makeCsr(
  nDocs: number,
  nLatents: number,
  present: (doc: number, latent: number) => boolean,
  r: () => number
): PooledCsr {
  const indptr = new Int32Array(nDocs + 1)
  const latents: number[] = []
  const values: number[] = []
  for (let i = 0; i < nDocs; i++) {
    for (let l = 0; l < nLatents; l++) {
      if (present(i, l)) {
        latents.push(l)
        values.push(0.1 + r())
      }
    }
    // A stored zero must not count as present.
    if (i % 7 === 0) {
      latents.push(nLatents - 1)
      values.push(0)
    }
    indptr[i + 1] = latents.length
  }
  return {
    nDocs,
    nLatents,
    indptr,
    latents: Int32Array.from(latents),
    values: Float32Array.from(values),
    positions: new Int32Array(latents.length).fill(-1)
  }
}

const defaults: DiffOptions = { limit: 50, minFrequency: 0, maxFrequency: 1, metric: 'absolute', direction: 'a' }
const N_LATENTS = 64
const labels = Array.from({ length: N_LATENTS }, (_, l) => (l % 2 ? `latent ${l}` : null))

// Planted rates: latent 7 is 40% in A and 10% in B; latent 20 the other way (10% vs 35%); latent 30 never
// fires; latent 40 is 2% in A and absent from B; latent 41 is rare (0.1%) in both; latent 63 is the
// stored-zero column. Every other latent has the same random rate in A and B (null latents).
const PLANTED = new Set([7, 20, 30, 40, 41, 63])
function rates(seed: number): { rateA: Float64Array; rateB: Float64Array } {
  const r = rng(seed)
  const rateA = new Float64Array(N_LATENTS)
  for (let l = 0; l < N_LATENTS; l++) rateA[l] = 0.05 + 0.45 * r()
  const rateB = rateA.slice()
  rateA[7] = 0.4
  rateB[7] = 0.1
  rateA[20] = 0.1
  rateB[20] = 0.35
  rateA[30] = 0
  rateB[30] = 0
  rateA[40] = 0.02
  rateB[40] = 0
  rateA[41] = 0.001
  rateB[41] = 0.001
  rateA[63] = 0
  rateB[63] = 0
  return { rateA, rateB }
}

const { rateA, rateB } = rates(1)
const rA = rng(2)
const rB = rng(3)
const csrA = makeCsr(2000, N_LATENTS, (_, l) => rA() < rateA[l], rA)
const csrB = makeCsr(2000, N_LATENTS, (_, l) => rB() < rateB[l], rB)
const sideA = { id: 'a', name: 'A', documents: csrA.nDocs, counts: presenceCounts(csrA) }
const sideB = { id: 'b', name: 'B', documents: csrB.nDocs, counts: presenceCounts(csrB) }
const run = (options: Partial<DiffOptions> = {}, b = [sideB]) =>
  diffLatents({ a: sideA, b, labels, options: { ...defaults, ...options } })

test('a planted latent (40% in A, 10% in B) comes first and is significant; null latents are not', () => {
  const out = run({ limit: 5000 })
  const top = out.latents[0]
  assert.equal(top.latent, 7)
  assert.equal(top.label, 'latent 7')
  assert.equal(top.against, 'b')
  assert.equal(top.test, 'z')
  assert.equal(top.countA, sideA.counts[7])
  assert.equal(top.frequencyA, sideA.counts[7] / 2000)
  assert.equal(top.difference, top.frequencyA - top.frequencyB)
  assert.ok(Math.abs(top.difference - 0.3) < 0.04, `difference ${top.difference}`)
  assert.ok(top.ci95[0] > 0.2 && top.ci95[0] < top.difference && top.ci95[1] > top.difference && top.ci95[1] < 0.4)
  assert.ok(top.qValue !== null && top.qValue < 1e-50, `q ${top.qValue}`)
  const nulls = out.latents.filter(d => !PLANTED.has(d.latent))
  assert.equal(nulls.length, N_LATENTS - PLANTED.size)
  assert.ok(
    nulls.every(d => d.qValue !== null && d.qValue > 0.05),
    'no null latent is declared different'
  )
  // Latents 30 and 63 never fire (63 only as stored zeros): outside the family, not reported.
  assert.equal(out.tested, N_LATENTS - 2)
  assert.ok(!out.latents.some(d => d.latent === 30 || d.latent === 63))
  // The rare latent goes to Fisher's exact test.
  assert.equal(out.latents.find(d => d.latent === 41)?.test, 'fisher')
  // Sorted by difference, A over B.
  for (let i = 1; i < out.latents.length; i++) assert.ok(out.latents[i - 1].difference >= out.latents[i].difference)
})

test('q-values are Benjamini-Hochberg over exactly the tested latents', () => {
  const out = run({ limit: 5000 })
  assert.equal(out.latents.length, out.tested)
  const q = benjaminiHochberg(Float64Array.from(out.latents, d => d.pValue))
  out.latents.forEach((d, i) => {
    assert.equal(d.qValue, q[i])
  })
})

test('direction b puts the most negative differences first; both sorts by |difference|', () => {
  const b = run({ direction: 'b' })
  assert.equal(b.latents[0].latent, 20)
  assert.ok(b.latents[0].difference < -0.2)
  for (let i = 1; i < b.latents.length; i++) assert.ok(b.latents[i - 1].difference <= b.latents[i].difference)
  const both = run({ direction: 'both', limit: 2 })
  assert.deepEqual(
    both.latents.map(d => d.latent),
    [7, 20]
  )
})

test('relative metric: a latent absent from B scores 1 and outranks a larger absolute difference', () => {
  const out = run({ metric: 'relative', limit: 3 })
  assert.equal(out.latents[0].latent, 40)
  assert.equal(out.latents[0].difference, 1)
  const seven = run({ metric: 'relative', latents: [7] }).latents.find(d => d.latent === 7)!
  assert.ok(Math.abs(seven.difference - (seven.frequencyA - seven.frequencyB) / seven.frequencyA) < 1e-15)
  // The interval stays on the absolute scale, fA - fB.
  assert.ok(seven.ci95[0] < seven.frequencyA - seven.frequencyB && seven.ci95[1] > seven.frequencyA - seven.frequencyB)
})

test('coverage masks on max(fA, fB) decide the family', () => {
  const masked = run({ minFrequency: 0.03, maxFrequency: 0.38, limit: 5000 })
  let expected = 0
  for (let l = 0; l < N_LATENTS; l++) {
    const top = Math.max(sideA.counts[l], sideB.counts[l]) / 2000
    if (top > 0 && top >= 0.03 && top <= 0.38) expected++
  }
  assert.equal(masked.tested, expected)
  const ids = new Set(masked.latents.map(d => d.latent))
  assert.ok(!ids.has(40) && !ids.has(41), 'rare latents are masked')
  assert.ok(!ids.has(7), 'latent 7 (40% in A) is above maxFrequency')
  assert.ok(ids.has(20), 'latent 20 (35% in B) passes')
  // BH runs over the masked family only.
  const q = benjaminiHochberg(Float64Array.from(masked.latents, d => d.pValue))
  masked.latents.forEach((d, i) => {
    assert.equal(d.qValue, q[i])
  })
  assert.notEqual(
    masked.latents.find(d => d.latent === 20)!.qValue,
    run({ limit: 5000 }).latents.find(d => d.latent === 20)!.qValue
  )
})

test('latents= are always reported: appended after the limit, qValue null outside the family', () => {
  const out = run({ limit: 2, minFrequency: 0.03, latents: [41, 7, 30] })
  assert.equal(out.latents[0].latent, 7)
  assert.equal(out.latents.length, 4, 'latent 7 is in the top and not repeated')
  assert.deepEqual(
    out.latents.slice(2).map(d => d.latent),
    [41, 30],
    'listed latents follow in the order given'
  )
  const l41 = out.latents[2]
  assert.equal(l41.qValue, null)
  assert.equal(l41.test, 'fisher')
  assert.ok(l41.pValue > 0 && l41.pValue <= 1)
  const l30 = out.latents[3]
  assert.equal(l30.frequencyA, 0)
  assert.equal(l30.pValue, 1)
  assert.equal(l30.qValue, null)
  assert.throws(() => run({ latents: [N_LATENTS] }), RangeError)
})

test('several b datasets: each latent is compared with the b where it is most frequent (ties: first)', () => {
  const boosted = Int32Array.from(sideB.counts)
  boosted[7] = 700
  const b2 = { id: 'b2', name: 'B2', documents: 2000, counts: boosted }
  const b3 = { id: 'b3', name: 'B3', documents: 2000, counts: sideB.counts }
  const out = run({ latents: [7, 3] }, [sideB, b2, b3])
  const seven = out.latents.find(d => d.latent === 7)!
  assert.equal(seven.against, 'b2')
  assert.equal(seven.frequencyB, 0.35)
  assert.equal(seven.countB, 700)
  assert.equal(out.latents.find(d => d.latent === 3)!.against, 'b', 'a tie between b and b3 goes to the first')
  assert.throws(() => run({}, []), RangeError)
})

test('paired design: McNemar on discordant pairs finds what an unpaired test cannot', () => {
  const pairs = 1500
  const r = rng(8)
  // Latent 9: both 50% of pairs, A only 5%, B only 1.5% (a small difference between highly correlated
  // members). Other latents: independent, same rate in both members.
  const state = new Uint8Array(pairs)
  for (let i = 0; i < pairs; i++) {
    const u = r()
    state[i] = u < 0.5 ? 3 : u < 0.55 ? 1 : u < 0.565 ? 2 : 0
  }
  const a = makeCsr(pairs, N_LATENTS, (i, l) => (l === 9 ? (state[i] & 1) === 1 : r() < 0.2), r)
  // B's rows are stored in reverse order: the pairing, not the row order, must line them up.
  const b = makeCsr(pairs, N_LATENTS, (i, l) => (l === 9 ? (state[pairs - 1 - i] & 2) === 2 : r() < 0.2), r)
  const rowsA = Int32Array.from({ length: pairs }, (_, i) => i)
  const rowsB = Int32Array.from({ length: pairs }, (_, i) => pairs - 1 - i)
  const paired = diffPaired({ a, b, rowsA, rowsB, labels, against: 'b', options: { ...defaults, limit: 5000 } })
  assert.equal(paired.pairs, pairs)
  const p9 = paired.latents.find(d => d.latent === 9)!
  let f = 0,
    g = 0
  for (let i = 0; i < pairs; i++) {
    if (state[i] === 1) f++
    if (state[i] === 2) g++
  }
  assert.equal(p9.test, 'mcnemar')
  assert.ok(Math.abs(p9.difference - (f - g) / pairs) < 1e-15)
  assert.ok(Math.abs(p9.difference - (p9.frequencyA - p9.frequencyB)) < 1e-15)
  assert.ok(p9.ci95[0] > 0 && p9.ci95[1] > p9.difference)
  assert.equal(
    paired.latents.reduce((best, d) => (d.pValue < best.pValue ? d : best)).latent,
    9,
    'latent 9 has the smallest p'
  )
  const unpaired = diffLatents({
    a: { id: 'a', name: 'A', documents: pairs, counts: presenceCounts(a) },
    b: [{ id: 'b', name: 'B', documents: pairs, counts: presenceCounts(b) }],
    labels,
    options: { ...defaults, latents: [9] }
  }).latents.find(d => d.latent === 9)!
  assert.equal(unpaired.difference, p9.difference)
  assert.ok(p9.pValue < 1e-3, `paired p ${p9.pValue}`)
  assert.ok(unpaired.pValue > 0.01 && unpaired.pValue > 1000 * p9.pValue, `unpaired p ${unpaired.pValue}`)
  assert.ok(p9.qValue !== null && p9.qValue < 0.05)
  // The null latents stay null under pairing too.
  assert.ok(paired.latents.filter(d => d.latent !== 9).every(d => d.qValue === null || d.qValue > 0.05))
  assert.throws(
    () => diffPaired({ a, b, rowsA, rowsB: rowsB.subarray(1), labels, against: 'b', options: defaults }),
    RangeError
  )
})

test('length strata are quintiles of the pooled token counts', () => {
  const r = rng(4)
  const tA = Int32Array.from({ length: 1000 }, () => 1 + Math.floor(r() * 5000))
  const tB = Int32Array.from({ length: 500 }, () => 1 + Math.floor(r() * 2000))
  const { edges, strataA, strataB } = lengthStrata(tA, tB)
  assert.equal(edges.length, 4)
  const size = new Int32Array(5)
  for (const s of strataA) size[s]++
  for (const s of strataB) size[s]++
  for (const n of size) assert.ok(Math.abs(n - 300) <= 3, `stratum of ${n} documents`)
  for (let i = 0; i < tA.length; i++) {
    const s = strataA[i]
    if (s > 0) assert.ok(tA[i] > edges[s - 1])
    if (s < 4) assert.ok(tA[i] <= edges[s])
  }
})

test('length control: a latent that only tracks length is significant naively but not after stratifying', () => {
  const n = 3000
  const r = rng(21)
  // Lengths come in five clusters (100, 200, ..., 500 tokens, +-20); A leans long (10% ... 30%), B short
  // (30% ... 10%), so the pooled clusters are quintiles and documents of A and B within a stratum have
  // the same lengths. Latent 11 fires with probability length / 700 and nothing else; latent 12 is a
  // real difference (30% vs 20%) at every length.
  const length = (weights: number[]) => {
    let u = r()
    let k = 0
    while (k < 4 && u > weights[k]) u -= weights[k++]
    return 100 * (k + 1) - 20 + Math.floor(r() * 41)
  }
  const tokensA = Int32Array.from({ length: n }, () => length([0.1, 0.15, 0.2, 0.25, 0.3]))
  const tokensB = Int32Array.from({ length: n }, () => length([0.3, 0.25, 0.2, 0.15, 0.1]))
  const byLength = (t: number) => t / 700
  const a = makeCsr(n, N_LATENTS, (i, l) => r() < (l === 11 ? byLength(tokensA[i]) : l === 12 ? 0.3 : 0.15), r)
  const b = makeCsr(n, N_LATENTS, (i, l) => r() < (l === 11 ? byLength(tokensB[i]) : l === 12 ? 0.2 : 0.15), r)
  const options = { ...defaults, latents: [11, 12] }
  const naive = diffLatents({
    a: { id: 'a', name: 'A', documents: n, counts: presenceCounts(a) },
    b: [{ id: 'b', name: 'B', documents: n, counts: presenceCounts(b) }],
    labels,
    options
  })
  const naive11 = naive.latents.find(d => d.latent === 11)!
  assert.ok(naive11.qValue! < 1e-10, `naive q ${naive11.qValue}`)
  const controlled = diffLengthControlled({ a, b, tokensA, tokensB, labels, against: 'b', options })
  const c11 = controlled.latents.find(d => d.latent === 11)!
  const c12 = controlled.latents.find(d => d.latent === 12)!
  assert.equal(c11.test, 'cmh')
  assert.ok(c11.pValue > 0.01, `stratified p ${c11.pValue}`)
  assert.ok(c11.ci95[0] < 0 && c11.ci95[1] > 0, 'the interval covers 0')
  assert.ok(Math.abs(c11.difference) < Math.abs(naive11.difference) / 3)
  // Frequencies are still the unstratified shares.
  assert.equal(c11.frequencyA, naive11.frequencyA)
  assert.equal(c11.frequencyB, naive11.frequencyB)
  // The real difference survives, with the MH risk difference near 0.1.
  assert.equal(controlled.latents[0].latent, 12)
  assert.ok(
    c12.qValue! < 1e-10 && Math.abs(c12.difference - 0.1) < 0.035,
    `latent 12: ${c12.difference}, q ${c12.qValue}`
  )
  assert.ok(c12.ci95[0] < c12.difference && c12.difference < c12.ci95[1])
  assert.throws(
    () => diffLengthControlled({ a, b, tokensA: tokensA.subarray(1), tokensB, labels, against: 'b', options }),
    RangeError
  )
})

test('a short limit reports the first latents of the full ranking, ties included, in every direction and metric', () => {
  // 4,000 latents with coarse counts (many equal differences and p-values): limit 25 takes the one-pass selection,
  // limit = every latent the full sort; the first 25 must be the same latents in the same order.
  const L = 4000
  const r = rng(21)
  const counts = () => Int32Array.from({ length: L }, () => (r() < 0.1 ? 0 : Math.round(r() * 8) * 25))
  const a = { id: 'a', name: 'A', documents: 1000, counts: counts() }
  const b = { id: 'b', name: 'B', documents: 1200, counts: counts() }
  const noLabels = new Array<string | null>(L).fill(null)
  for (const metric of ['absolute', 'relative'] as const)
    for (const direction of ['a', 'b', 'both'] as const) {
      const diff = (limit: number) =>
        diffLatents({ a, b: [b], labels: noLabels, options: { ...defaults, metric, direction, limit } }).latents
      const all = diff(L)
      assert.ok(all.length > 3000)
      assert.deepEqual(diff(25), all.slice(0, 25), `${metric} ${direction}`)
    }
})
