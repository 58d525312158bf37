/** @module Tests of latent co-occurrence: NPMI by hand, filters, a brute-force cross-check, candidate truncation, adjacency. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { csrFromCoo, type PooledCsr } from './sparse.ts'
import { consideredLatents, cooccurrence, CooccurrenceCounter, npmi, presence } from './cooccurrence.ts'

/** A CSR from rows of [latent, position] (value 1 each). */
function rows(nLatents: number, docs: Array<Array<number | [number, number]>>): PooledCsr {
  const d: number[] = [],
    l: number[] = [],
    v: number[] = [],
    p: number[] = []
  docs.forEach((row, i) => {
    for (const x of row) {
      const [latent, pos] = Array.isArray(x) ? x : [x, -1]
      d.push(i)
      l.push(latent)
      v.push(1)
      p.push(pos)
    }
  })
  return csrFromCoo(docs.length, nLatents, d, l, v, p)
}

/** Seeded xorshift in [0, 1). */
function rng(seed: number) {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 4294967296
  }
}

test('npmi matches the definition on hand-computed values', () => {
  // 4 documents: a in {0,1}, b in {0,1}: P(a)=P(b)=P(a,b)=1/2 -> ln(2)/ln(2) = 1 (perfect co-occurrence).
  assert.equal(npmi(2, 2, 2, 4), 1)
  // Independent: P(a)=P(b)=1/2, P(a,b)=1/4 -> ln(1)/... = 0.
  assert.ok(Math.abs(npmi(1, 2, 2, 4)) < 1e-15)
  // P(a)=1/2, P(b)=1/4, P(a,b)=1/8 of 8 docs: a in 4, b in 2, both in 1 -> ln(0.125/0.125) = 0.
  assert.ok(Math.abs(npmi(1, 4, 2, 8)) < 1e-15)
  // a in 3 of 10, b in 4, both in 2: ln(0.2 / 0.12) / -ln(0.2).
  assert.ok(Math.abs(npmi(2, 3, 4, 10) - Math.log(0.2 / 0.12) / -Math.log(0.2)) < 1e-15)
  assert.equal(npmi(5, 5, 5, 5), 1, 'P(a,b) = 1 is defined as 1')
  assert.ok(Number.isNaN(npmi(0, 3, 3, 10)), 'never together: undefined, not listed')
})

test('pairs, counts and conditional probabilities on a tiny matrix', () => {
  const csr = rows(5, [[0, 1], [0, 1], [0, 2], [1, 3], [2, 3], [4], [4], [4]])
  const r = cooccurrence(csr, { minCount: 1, minNpmi: -1, maxFrequency: 1, dropAdjacent: false })
  assert.deepEqual(Array.from(r.docCount), [3, 3, 2, 2, 3])
  const got = new Map<string, [number, number]>()
  for (let i = 0; i < r.pairs.length; i++)
    got.set(`${r.pairs.a[i]}-${r.pairs.b[i]}`, [r.pairs.count[i], r.pairs.npmi[i]])
  assert.deepEqual([...got.keys()].sort(), ['0-1', '0-2', '1-3', '2-3'], 'pairs that never co-occur are not listed')
  assert.equal(got.get('0-1')![0], 2)
  assert.ok(Math.abs(got.get('0-1')![1] - npmi(2, 3, 3, 8)) < 1e-15)
  assert.ok(Math.abs(got.get('2-3')![1] - Math.log(1 / 8 / ((2 / 8) * (2 / 8))) / -Math.log(1 / 8)) < 1e-15)
  for (let i = 1; i < r.pairs.length; i++) assert.ok(r.pairs.npmi[i] <= r.pairs.npmi[i - 1], 'sorted by NPMI')
  assert.equal(r.pairsCounted, 4)
  assert.equal(r.work, 1 + 1 + 1 + 1 + 1)
})

test('frequency filters act before pairing; minCount also drops latents too rare to pair', () => {
  const docCount = Int32Array.from([1, 5, 10, 50, 60, 100])
  assert.deepEqual(Array.from(consideredLatents(docCount, 100, { minCount: 5, maxFrequency: 0.5 })), [1, 2, 3])
  assert.deepEqual(
    Array.from(consideredLatents(docCount, 100, { minCount: 1, minFrequency: 0.1, maxFrequency: 0.6 })),
    [2, 3, 4]
  )
  assert.deepEqual(Array.from(consideredLatents(docCount, 100, { minCount: 1, maxFrequency: 1 })), [0, 1, 2, 3, 4, 5])
  // latent 0 is in every document: maxFrequency 0.5 removes it and every pair it is in.
  const csr = rows(3, [[0, 1, 2], [0, 1, 2], [0], [0], [0, 2]])
  const r = cooccurrence(csr, { minCount: 1, minNpmi: -1, maxFrequency: 0.6 })
  assert.deepEqual(Array.from(r.considered), [1, 2])
  assert.equal(r.pairs.length, 1)
  assert.deepEqual([r.pairs.a[0], r.pairs.b[0], r.pairs.count[0]], [1, 2, 2])
  const strict = cooccurrence(csr, { minCount: 3, minNpmi: -1, maxFrequency: 1 })
  assert.equal(strict.pairs.length, 1, 'only 0-2 is seen in 3 documents')
  assert.deepEqual([strict.pairs.a[0], strict.pairs.b[0]], [0, 2])
  const above = cooccurrence(csr, { minCount: 1, minNpmi: 0.99, maxFrequency: 1 })
  assert.ok(Array.from(above.pairs.npmi.subarray(0, above.pairs.length)).every(v => v >= 0.99))
})

// Frequent latents (j % 7 = 0) fill their rows and are scored by a scan; rare ones by their list of touched cells.
test('counts equal a brute-force count over random sparse rows; values <= 0 are absent', () => {
  const rand = rng(7)
  const nDocs = 300,
    nLatents = 60
  const d: number[] = [],
    l: number[] = [],
    v: number[] = [],
    p: number[] = []
  for (let i = 0; i < nDocs; i++) {
    for (let j = 0; j < nLatents; j++) {
      if (rand() < 0.02 + 0.3 * (j % 7 === 0 ? 1 : 0) * rand()) {
        d.push(i)
        l.push(j)
        v.push(rand() < 0.05 ? 0 : 1 + rand())
        p.push(Math.floor(rand() * 20))
      }
    }
  }
  const csr = csrFromCoo(nDocs, nLatents, d, l, v, p)
  const r = cooccurrence(csr, { minCount: 1, minNpmi: -1, maxFrequency: 1, dropAdjacent: false, dropPositional: false })
  const counts = presence(csr)
  const pair = new Map<number, [number, number]>()
  for (let i = 0; i < nDocs; i++) {
    const present: Array<[number, number]> = []
    for (let k = csr.indptr[i]; k < csr.indptr[i + 1]; k++)
      if (csr.values[k] > 0) present.push([csr.latents[k], csr.positions[k]])
    for (let x = 0; x < present.length; x++)
      for (let y = x + 1; y < present.length; y++) {
        const key = present[x][0] * nLatents + present[y][0]
        const e = pair.get(key) ?? [0, 0]
        e[0]++
        if (Math.abs(present[x][1] - present[y][1]) <= 1) e[1]++
        pair.set(key, e)
      }
  }
  assert.equal(r.pairs.length, pair.size)
  for (let i = 0; i < r.pairs.length; i++) {
    const [c, near] = pair.get(r.pairs.a[i] * nLatents + r.pairs.b[i])!
    assert.equal(r.pairs.count[i], c)
    assert.equal(r.pairs.adjacent[i], near)
    assert.ok(Math.abs(r.pairs.npmi[i] - npmi(c, counts[r.pairs.a[i]], counts[r.pairs.b[i]], nDocs)) < 1e-12)
  }
})

test('a bounded candidate buffer keeps exactly the top pairs', () => {
  const rand = rng(3)
  const docs: number[][] = []
  for (let i = 0; i < 400; i++) docs.push(Array.from({ length: 40 }, (_, j) => j).filter(() => rand() < 0.3))
  const csr = rows(40, docs)
  const all = cooccurrence(csr, { minCount: 1, minNpmi: -1, maxFrequency: 1, dropAdjacent: false })
  const few = cooccurrence(csr, { minCount: 1, minNpmi: -1, maxFrequency: 1, dropAdjacent: false, maxCandidates: 64 })
  assert.equal(all.truncated, false)
  assert.equal(few.truncated, true)
  assert.ok(few.pairs.length > 0 && few.pairs.length <= 64)
  for (let i = 0; i < few.pairs.length; i++) {
    assert.deepEqual(
      [few.pairs.a[i], few.pairs.b[i], few.pairs.npmi[i]],
      [all.pairs.a[i], all.pairs.b[i], all.pairs.npmi[i]]
    )
  }
})

test('a planted pair in 40 of 4000 documents comes out on top', () => {
  const rand = rng(11)
  const nDocs = 4000,
    nLatents = 400
  const X = 123,
    Y = 321
  const planted = new Set<number>()
  while (planted.size < 40) planted.add(Math.floor(rand() * nDocs))
  const docs: number[][] = []
  for (let i = 0; i < nDocs; i++) {
    const row = new Set<number>()
    // Zipf-like background: latent j present with probability ~ 0.4 / (1 + j)^0.8.
    for (let j = 0; j < nLatents; j++) if (j !== X && j !== Y && rand() < 0.4 / (1 + j) ** 0.8) row.add(j)
    if (planted.has(i)) {
      row.add(X)
      row.add(Y)
    }
    docs.push([...row])
  }
  // X and Y also appear alone a few times, as real latents would.
  for (let t = 0; t < 5; t++) {
    docs[Math.floor(rand() * nDocs)].push(X)
    docs[Math.floor(rand() * nDocs)].push(Y)
  }
  const r = cooccurrence(
    rows(
      nLatents,
      docs.map(d => [...new Set(d)])
    ),
    {}
  )
  assert.ok(r.pairs.length >= 1)
  assert.deepEqual([r.pairs.a[0], r.pairs.b[0]], [X, Y])
  assert.ok(r.pairs.count[0] >= 40)
  assert.ok(r.pairs.npmi[0] > 0.8, `npmi ${r.pairs.npmi[0]}`)
  if (r.pairs.length > 1) assert.ok(r.pairs.npmi[1] < r.pairs.npmi[0] - 0.2, 'the background has no pair close to it')
})

test('pairs peaking on the same or adjacent tokens are dropped (or kept and flagged)', () => {
  // 0-1 peak on adjacent tokens everywhere; 2-3 co-occur as often but far apart; 4-5 adjacent in 1 of 3 documents.
  const docs: Array<Array<[number, number]>> = []
  for (let i = 0; i < 6; i++)
    docs.push([
      [0, 10 + i],
      [1, 11 + i],
      [2, 3],
      [3, 40 + i]
    ])
  docs.push(
    [
      [4, 5],
      [5, 6]
    ],
    [
      [4, 5],
      [5, 30]
    ],
    [
      [4, 5],
      [5, 50]
    ]
  )
  for (let i = 0; i < 12; i++) docs.push([])
  const csr = rows(6, docs)
  // Latents 2 and 4 peak at one fixed position: positional, which this test is not about.
  const flagged = cooccurrence(csr, { minCount: 3, minNpmi: 0.5, dropAdjacent: false, dropPositional: false })
  const share = (r: ReturnType<typeof cooccurrence>, a: number, b: number) => {
    for (let i = 0; i < r.pairs.length; i++)
      if (r.pairs.a[i] === a && r.pairs.b[i] === b) return r.pairs.adjacent[i] / r.pairs.count[i]
    return null
  }
  assert.equal(share(flagged, 0, 1), 1)
  assert.equal(share(flagged, 2, 3), 0)
  assert.equal(share(flagged, 4, 5), 1 / 3)
  const dropped = cooccurrence(csr, { minCount: 3, minNpmi: 0.5, dropPositional: false })
  assert.equal(share(dropped, 0, 1), null)
  assert.equal(share(dropped, 2, 3), 0)
  assert.equal(share(dropped, 4, 5), 1 / 3)
  assert.equal(dropped.droppedAdjacent, 1)
  // Unknown positions (-1) are never adjacent.
  const unknown = cooccurrence(rows(2, [[0, 1], [0, 1], [0, 1], [], [], [], []]), { minCount: 3 })
  assert.equal(unknown.pairs.length, 1)
  assert.equal(unknown.pairs.adjacent[0], 0)
})

test('adjacentTokens widens "adjacent" to the pieces of one word: peaks 3 tokens apart drop at 3, stay at 1 and 2', () => {
  // 0-1 peak 3 tokens apart (either order) in every document; 2-3 4 tokens apart; 4-5 far apart.
  const docs: Array<Array<[number, number]>> = []
  for (let i = 0; i < 6; i++)
    docs.push([
      [0, 20 + i],
      [1, i % 2 ? 23 + i : 17 + i],
      [2, 60 + 7 * i],
      [3, 64 + 7 * i],
      [4, 5 + i],
      [5, 90 + 3 * i]
    ])
  for (let i = 0; i < 12; i++) docs.push([])
  const csr = rows(6, docs)
  const kept = (r: ReturnType<typeof cooccurrence>) =>
    Array.from({ length: r.pairs.length }, (_, i) => `${r.pairs.a[i]}-${r.pairs.b[i]}`)
      .filter(p => ['0-1', '2-3', '4-5'].includes(p))
      .sort()
  const at = (adjacentTokens?: number) =>
    cooccurrence(csr, { minCount: 3, minNpmi: 0.5, dropPositional: false, adjacentTokens })
  assert.deepEqual(kept(at()), ['0-1', '2-3', '4-5'], 'default 1: the same or the next token only')
  assert.deepEqual(kept(at(2)), ['0-1', '2-3', '4-5'])
  assert.deepEqual(kept(at(3)), ['2-3', '4-5'])
  assert.deepEqual(kept(at(4)), ['4-5'])
  assert.equal(at(0).droppedAdjacent, 0, 'no pair peaks on the very same token')
})

test('positional latents (max at one position, within a token, in >= 90% of their documents) are left out', () => {
  // 0 and 1 peak at positions 200 and 205 in every document long enough (the first 10), i.e. pure position;
  // 2 and 3 co-occur in the same 10 documents but peak wherever the content is; 4 peaks at 7 or 8 (within one) in 9 of 10.
  const docs: Array<Array<[number, number]>> = []
  for (let i = 0; i < 10; i++)
    docs.push([
      [0, 200],
      [1, 205],
      [2, 13 * i + 1],
      [3, 17 * i + 40],
      [4, i === 9 ? 60 : 7 + (i % 2)],
      [5, 11 * i + 3]
    ])
  for (let i = 0; i < 30; i++) docs.push([])
  const csr = rows(6, docs)
  const kept = cooccurrence(csr, { minCount: 3, minNpmi: 0.5, dropPositional: false })
  const has = (r: ReturnType<typeof cooccurrence>, a: number, b: number) =>
    Array.from({ length: r.pairs.length }, (_, i) => i).some(i => r.pairs.a[i] === a && r.pairs.b[i] === b)
  assert.ok(has(kept, 0, 1) && has(kept, 2, 3) && has(kept, 4, 5))
  assert.equal(kept.droppedPositional, 0)
  const r = cooccurrence(csr, { minCount: 3, minNpmi: 0.5 })
  assert.equal(r.droppedPositional, 3, 'latents 0, 1 and 4 (9 of 10 within one token) are positional')
  assert.ok(!has(r, 0, 1) && !has(r, 0, 2) && !has(r, 4, 5), 'no pair with a positional latent')
  assert.ok(has(r, 2, 3) && has(r, 2, 5) && has(r, 3, 5), 'content latents keep their pairs')
  assert.equal(r.pairsCounted, 3)
  // Unknown positions (-1) never make a latent positional.
  assert.equal(cooccurrence(rows(2, [[0, 1], [0, 1], [0, 1], [], [], [], []]), { minCount: 3 }).droppedPositional, 0)
})

test('documents added in slices give the same pairs as the whole CSR; counts that disagree with the rows are refused', () => {
  const rand = rng(5)
  const docs: Array<Array<[number, number]>> = []
  for (let i = 0; i < 500; i++)
    docs.push(
      Array.from({ length: 30 }, (_, j) => j)
        .filter(() => rand() < 0.25)
        .map(j => [j, Math.floor(rand() * 30)] as [number, number])
    )
  const csr = rows(30, docs)
  const options = { minCount: 2, minNpmi: -1 }
  const whole = cooccurrence(csr, options)
  const counter = new CooccurrenceCounter(presence(csr), csr.nDocs, options)
  for (let start = 0; start < csr.nDocs; start += 77) {
    const end = Math.min(csr.nDocs, start + 77)
    const k0 = csr.indptr[start],
      k1 = csr.indptr[end]
    counter.add({
      nDocs: end - start,
      nLatents: 30,
      indptr: csr.indptr.slice(start, end + 1).map(x => x - k0),
      latents: csr.latents.subarray(k0, k1),
      values: csr.values.subarray(k0, k1),
      positions: csr.positions.subarray(k0, k1)
    })
  }
  const sliced = counter.finish()
  assert.ok(whole.pairs.length > 50)
  assert.deepEqual(sliced.pairs, whole.pairs)
  assert.equal(sliced.work, whole.work)

  const wrong = presence(csr)
  wrong[3]--
  const bad = new CooccurrenceCounter(wrong, csr.nDocs, options)
  assert.throws(() => {
    bad.add(csr)
    bad.finish()
  }, /document count/)
  const short = new CooccurrenceCounter(presence(csr), csr.nDocs + 1, options)
  short.add(csr)
  assert.throws(() => short.finish(), /added 500 of 501 documents/)
  // Same total, wrong split between two latents: caught per latent.
  const swapped = presence(csr)
  swapped[3]--
  swapped[4]++
  const odd = new CooccurrenceCounter(swapped, csr.nDocs, options)
  odd.add(csr)
  assert.throws(() => odd.finish(), /latent 3 is present in \d+ documents, but its document count says/)
})
