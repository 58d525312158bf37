/** @module Tests of the SAE retrieval score, ranking, fusion and snippets. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { csrFromCoo, cscFromCsr } from './sparse.ts'
import { emptyStats, statsFromCsr } from './latent-stats.ts'
import {
  rankWeights,
  maximalMarginalRelevance,
  saeScores,
  scoreParts,
  topRows,
  reciprocalRankFusion,
  snippet,
  p90Of,
  p90Bytes,
  parseP90Bytes,
  estimateCharOffset,
  firstLatentPosition,
  firstLatentEntry,
  CHARS_PER_TOKEN
} from './search.ts'

test('rank weights are exp(-(r/k)/T)', () => {
  const w = rankWeights(3, 10, 0.2)
  assert.equal(w[0], 1)
  assert.ok(Math.abs(w[2] - Math.exp(-1)) < 1e-7)
  assert.throws(() => rankWeights(2, 2, 0))
})

test('document score sums rank weights times value / p90, optionally capped', () => {
  // 4 documents, latents 3 and 7.
  const csr = csrFromCoo(4, 8, [0, 0, 1, 2, 3], [3, 7, 3, 7, 7], [2, 1, 4, 3, 0.5])
  const csc = cscFromCsr(csr)
  const s = saeScores(csc, [7, 3], [1, 0.5], [2, 4])
  assert.deepEqual(Array.from(s), [1 / 2 + (0.5 * 2) / 4, (0.5 * 4) / 4, 3 / 2, 0.5 / 2])
  const capped = saeScores(csc, [7, 3], [1, 0.5], [2, 4], 1)
  assert.equal(capped[2], 1, 'value 3 over p90 2 is capped at 1')
  assert.deepEqual(Array.from(saeScores(csc, [7], [1], [0])), [0, 0, 0, 0], 'a latent never present adds nothing')
})

test("a document's score parts: the chosen latents present in it, largest part first, adding up to its score", () => {
  const csr = csrFromCoo(4, 8, [0, 0, 1, 2, 3], [3, 7, 3, 7, 7], [2, 1, 4, 3, 0.5])
  const csc = cscFromCsr(csr)
  const scores = saeScores(csc, [7, 3], [1, 0.5], [2, 4])
  for (let doc = 0; doc < 4; doc++) {
    const parts = scoreParts(csc, [7, 3], [1, 0.5], [2, 4], doc, Infinity)
    assert.ok(Math.abs(parts.reduce((s, p) => s + p.part, 0) - scores[doc]) < 1e-6, `doc ${doc}`)
    for (let i = 1; i < parts.length; i++) assert.ok(parts[i - 1].part >= parts[i].part)
  }
  assert.deepEqual(scoreParts(csc, [7, 3], [1, 0.5], [2, 4], 0, 5), [
    { latent: 7, value: 1, part: 0.5 },
    { latent: 3, value: 2, part: 0.25 }
  ])
  assert.deepEqual(scoreParts(csc, [7, 3], [1, 0.5], [2, 4], 0, 1).length, 1, 'at most limit')
  assert.deepEqual(
    scoreParts(csc, [7, 3], [1, 0.5], [2, 4], 2, 5, 1),
    [{ latent: 7, value: 3, part: 1 }],
    'capped alike'
  )
  assert.deepEqual(scoreParts(csc, [5], [1], [1], 0, 5), [], 'a chosen latent absent from the document')
})

test('p90 comes from the statistics histogram, within one bin', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1)
  const csr = csrFromCoo(
    100,
    2,
    values.map((_, i) => i),
    values.map(() => 1),
    values
  )
  const p = p90Of(statsFromCsr(csr), [1, 0])
  assert.ok(p[0] > 90 / 1.34 && p[0] < 90 * 1.34, `p90 ${p[0]}`)
  assert.equal(p[1], 0)
  assert.equal(p90Of(emptyStats(1), [0])[0], 0)
})

test('p90s stored at write time read back equal to p90Of; bytes of another size are refused', () => {
  const values = Array.from({ length: 300 }, (_, i) => ((i * 37) % 101) / 7 + 0.01)
  const csr = csrFromCoo(
    100,
    3,
    values.map((_, i) => i % 100),
    values.map((_, i) => i % 3),
    values
  )
  const stats = statsFromCsr(csr)
  const stored = parseP90Bytes(p90Bytes(stats), 3)!
  assert.deepEqual(Array.from(stored), Array.from(p90Of(stats, [0, 1, 2])))
  assert.ok(stored.every(v => v > 0))
  assert.equal(parseP90Bytes(p90Bytes(stats), 4), null)
  assert.equal(parseP90Bytes(null, 3), null)
})

test('topRows keeps positive scores, best first, ties to the lower row, same as a full sort', () => {
  let seed = 7
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
  const scores = Float32Array.from({ length: 5000 }, () => (rand() < 0.3 ? 0 : Math.round(rand() * 50) / 10))
  const full = Array.from(scores.keys())
    .filter(i => scores[i] > 0)
    .sort((a, b) => scores[b] - scores[a] || a - b)
  assert.deepEqual(Array.from(topRows(scores, 37)), full.slice(0, 37))
  assert.deepEqual(Array.from(topRows(scores)), full)
  assert.deepEqual(Array.from(topRows([0, 0, 1], 5)), [2])
  assert.equal(topRows(scores, 0).length, 0)
})

test('reciprocal rank fusion rewards agreement', () => {
  const f = reciprocalRankFusion(
    [
      [2, 0, 1],
      [0, 3]
    ],
    4,
    60
  )
  assert.ok(Math.abs(f[0] - (1 / 62 + 1 / 61)) < 1e-7)
  assert.ok(Math.abs(f[2] - 1 / 61) < 1e-7)
  assert.deepEqual(Array.from(topRows(f)), [0, 2, 3, 1])
})

test('snippets centre on the first whole-word query term, else the start', () => {
  const text = `${'lorem ipsum '.repeat(40)}the great WHALE surfaced ${'dolor sit '.repeat(40)}`
  const s = snippet(text, ['whale'], 100)
  assert.ok(s.includes('WHALE') && s.startsWith('…') && s.endsWith('…') && s.length <= 102, s)
  assert.ok(snippet(text, ['hal'], 100).startsWith('lorem'), 'no partial-word match')
  assert.equal(snippet('short\n\ntext'), 'short text')
})

test("a latent's max position becomes an estimated character offset that centres the snippet", () => {
  const csc = cscFromCsr(csrFromCoo(3, 4, [0, 1, 2, 2], [2, 2, 1, 2], [1, 0, 1, 1], [5, 6, 7, 8]))
  assert.equal(firstLatentPosition(csc, [2, 1], 2), 8)
  assert.equal(firstLatentPosition(csc, [1, 2], 2), 7)
  assert.equal(firstLatentPosition(csc, [2], 1), -1, 'a zero value is not present')
  assert.equal(firstLatentPosition(csc, [3], 0), -1)
  // The entry it reads (a search without positions reads the position there later).
  const entry = firstLatentEntry(csc, [1, 2], 2)
  assert.equal(csc.docs[entry], 2)
  assert.equal(csc.positions[entry], 7)
  assert.equal(firstLatentEntry(csc, [2], 1), -1)
  // 101 tokens (BOS + 100) over 500 characters: 5 characters a token.
  assert.equal(estimateCharOffset(500, 101, false, 41), 200)
  assert.equal(estimateCharOffset(5000, 101, true, 41), 40 * CHARS_PER_TOKEN)
  assert.equal(estimateCharOffset(100, 101, false, -1), -1)
  const text = `${'a'.repeat(300)} MARK ${'b'.repeat(300)}`
  assert.ok(snippet(text, [], 100, 301).includes('MARK'))
  assert.ok(snippet(text, ['zzz'], 100).startsWith('aaa'))
})

test('maximal marginal relevance moves a near-duplicate behind a different label, not behind a poor match', () => {
  // 0 and 1 say the same thing (cosine 0.98); 2 is a little less similar to the query but different; 3 matches poorly.
  const cos = [
    [1, 0.98, 0.1, 0.1],
    [0.98, 1, 0.05, 0.1],
    [0.1, 0.05, 1, 0.1],
    [0.1, 0.1, 0.1, 1]
  ]
  const c = (i: number, j: number) => cos[i][j]
  assert.deepEqual(Array.from(maximalMarginalRelevance([0.5, 0.49, 0.4, 0.1], 4, 0.7, c)), [0, 2, 1, 3])
  assert.deepEqual(
    Array.from(maximalMarginalRelevance([0.5, 0.49, 0.4, 0.1], 2, 0.7, c)),
    [0, 2],
    'k taken, best first'
  )
  // A concept of many near-duplicates that all match well stays ahead of a poor, different match.
  assert.deepEqual(
    Array.from(maximalMarginalRelevance([0.9, 0.89, 0.88, 0.3], 3, 0.7, (i, j) => (i < 3 && j < 3 ? 0.95 : 0.1))),
    [0, 1, 2]
  )
  assert.deepEqual(
    Array.from(maximalMarginalRelevance([0.5, 0.49, 0.4, 0.1], 4, 1, c)),
    [0, 1, 2, 3],
    'lambda 1: the similarity order'
  )
  assert.equal(maximalMarginalRelevance([], 5, 0.7, c).length, 0)
})
