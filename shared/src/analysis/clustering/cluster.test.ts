/** @module Tests for targeted clustering: Jaccard (exact and kNN), k-means++ determinism, planted-group recovery, affinities, descriptions. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { csrFromCoo } from '../sparse.ts'
import { binarize, components, jaccardDense, jaccardKnn, packedAt, postingsOf } from './jaccard.ts'
import { kmeansDense } from './kmeans.ts'
import { NothingSharedError, clusterDocuments, describeClusters } from './cluster.ts'
import { plantedCsr, purity } from './synthetic.ts'
import { seededRng } from '../../util/random.ts'
import { diffLatents } from '../diff.ts'

function randomRows(nDocs: number, nLatents: number, seed: number) {
  const rng = seededRng(seed)
  const docs: number[] = [],
    latents: number[] = [],
    values: number[] = []
  for (let d = 0; d < nDocs; d++) {
    for (let l = 0; l < nLatents; l++) {
      // Latent-dependent rates from 0.05 to 0.95, so some latents are in more than half the documents.
      const p = 0.05 + 0.9 * (l / (nLatents - 1)) ** 2
      if (rng.next() < p) {
        docs.push(d)
        latents.push(l)
        values.push(rng.next() < 0.1 ? 0 : 1 + rng.next())
      }
    }
  }
  return csrFromCoo(nDocs, nLatents, docs, latents, values)
}

function bruteJaccard(sets: Set<number>[], i: number, j: number): number {
  let inter = 0
  for (const x of sets[i]) if (sets[j].has(x)) inter++
  const union = sets[i].size + sets[j].size - inter
  return union ? inter / union : 0
}

function setsOf(csr: ReturnType<typeof randomRows>, keep?: Set<number>): Set<number>[] {
  return Array.from({ length: csr.nDocs }, (_, i) => {
    const s = new Set<number>()
    for (let k = csr.indptr[i]; k < csr.indptr[i + 1]; k++)
      if (csr.values[k] > 0 && (!keep || keep.has(csr.latents[k]))) s.add(csr.latents[k])
    return s
  })
}

test('binarize keeps present latents of the subset only, as compact columns', () => {
  const csr = csrFromCoo(2, 6, [0, 0, 0, 1, 1], [1, 3, 5, 3, 4], [1, 0, 2, 1, 1])
  const all = binarize(csr)
  assert.deepEqual(Array.from(all.latentOf), [1, 3, 4, 5])
  assert.deepEqual(Array.from(all.cols.subarray(all.indptr[0], all.indptr[1])), [0, 3]) // latent 3 has value 0 in doc 0
  const sub = binarize(csr, [5, 3, 3, 2])
  assert.deepEqual(Array.from(sub.latentOf), [2, 3, 5])
  assert.deepEqual(Array.from(sub.indptr), [0, 1, 2])
  assert.throws(() => binarize(csr, [6]), /does not exist/)
})

test('exact Jaccard matches a brute-force count, including latents present in most documents', () => {
  const csr = randomRows(70, 30, 7)
  const keep = new Set([0, 2, 5, 9, 14, 20, 25, 27, 28, 29])
  for (const subset of [undefined, [...keep]]) {
    const rows = binarize(csr, subset)
    const W = jaccardDense(rows, postingsOf(rows))
    const sets = setsOf(csr, subset ? keep : undefined)
    const n = csr.nDocs
    assert.equal(W.length, (n * (n - 1)) / 2)
    for (let i = 0; i < n; i++) {
      assert.equal(packedAt(W, n, i, i), 0)
      for (let j = 0; j < n; j++)
        if (i !== j) assert.ok(Math.abs(packedAt(W, n, i, j) - bruteJaccard(sets, i, j)) < 1e-6, `(${i}, ${j})`)
    }
  }
})

test("kNN graph with uncapped postings holds each document's exact nearest neighbours, symmetrized", () => {
  const csr = randomRows(80, 40, 8)
  const rows = binarize(csr)
  const k = 5
  const g = jaccardKnn(rows, postingsOf(rows), { neighbours: k, postingCap: 1_000, candidates: 80 })
  const sets = setsOf(csr)
  for (let i = 0; i < rows.nDocs; i++) {
    const row = new Map<number, number>()
    for (let p = g.indptr[i]; p < g.indptr[i + 1]; p++) row.set(g.cols[p], g.weights[p])
    const exact = Array.from({ length: rows.nDocs }, (_, j) => j)
      .filter(j => j !== i)
      .map(j => ({ j, w: bruteJaccard(sets, i, j) }))
      .sort((a, b) => b.w - a.w || a.j - b.j)
    for (const { j, w } of exact.slice(0, k))
      assert.ok(Math.abs((row.get(j) ?? -1) - w) < 1e-6, `doc ${i} misses neighbour ${j}`)
    for (const [j, w] of row) {
      assert.ok(Math.abs(w - bruteJaccard(sets, i, j)) < 1e-6)
      // Symmetric: j lists i with the same weight.
      let found = false
      for (let p = g.indptr[j]; p < g.indptr[j + 1]; p++) if (g.cols[p] === i) found = true
      assert.ok(found)
    }
  }
})

test('components: documents linked by shared latents, largest first; loners are -1', () => {
  // Docs 0-1 share latent 0; docs 2, 3, 4 chain through latents 1 and 2; doc 5 has a latent nobody else has; doc 6 is empty.
  const csr = csrFromCoo(7, 5, [0, 1, 2, 3, 3, 4, 5], [0, 0, 1, 1, 2, 2, 3], [1, 1, 1, 1, 1, 1, 1])
  const rows = binarize(csr)
  const c = components(7, postingsOf(rows))
  assert.equal(c.count, 2)
  assert.deepEqual(Array.from(c.label), [1, 1, 0, 0, 0, -1, -1])
  assert.deepEqual(Array.from(c.sizes), [3, 2])
  const g = jaccardKnn(rows, postingsOf(rows), { neighbours: 2 })
  assert.deepEqual(Array.from(components(7, g).label), [1, 1, 0, 0, 0, -1, -1])
})

test('k-means++: same seed, same output; different seeds reach different local optima', () => {
  const rng = seededRng(3)
  const n = 300,
    d = 2
  const pts = Float64Array.from({ length: n * d }, () => rng.next())
  const a = kmeansDense(pts, n, d, 8, { seed: 5, restarts: 1 })
  const b = kmeansDense(pts, n, d, 8, { seed: 5, restarts: 1 })
  assert.deepEqual(a.assignments, b.assignments)
  assert.deepEqual(a.centroids, b.centroids)
  const costs = new Set(
    [1, 2, 3, 4, 6, 7].map(s => kmeansDense(pts, n, d, 8, { seed: s, restarts: 1 }).cost.toFixed(9))
  )
  assert.ok(
    costs.size > 1,
    'uniform points have many local optima; every seed landing on the same one means the seed is ignored'
  )
  // More restarts can only improve the best objective of the same random stream's first start.
  assert.ok(kmeansDense(pts, n, d, 8, { seed: 5, restarts: 6 }).cost <= a.cost + 1e-12)
})

const planted = () =>
  plantedCsr({ docs: 180, nLatents: 400, axes: [{ groups: 3, latentsPerGroup: 20, p: 0.5 }], noisePerDoc: 25, seed: 4 })

for (const similarity of ['cosine', 'jaccard'] as const)
  test(`spectral clustering (${similarity}) recovers planted groups (purity > 0.9), identically for the same seed`, () => {
    const { csr, labels } = planted()
    const rows = binarize(csr)
    const a = clusterDocuments(rows, { k: 3, seed: 1, similarity })
    assert.equal(a.similarity, similarity)
    assert.ok(purity(a.assignments, labels[0]) > 0.9, `purity ${purity(a.assignments, labels[0])}`)
    const b = clusterDocuments(rows, { k: 3, seed: 1, similarity })
    assert.deepEqual(a.assignments, b.assignments)
    assert.deepEqual(a.affinities, b.affinities)
    assert.deepEqual(a.central, b.central)
    // Sizes sum to n and are ordered; every row of affinities sums to 1; central rows belong to their cluster.
    assert.equal(
      a.sizes.reduce((s, x) => s + x, 0),
      180
    )
    for (let c = 1; c < 3; c++) assert.ok(a.sizes[c] <= a.sizes[c - 1])
    for (let i = 0; i < 180; i++) {
      let s = 0
      for (let c = 0; c < 3; c++) s += a.affinities[i * 3 + c]
      assert.ok(Math.abs(s - 1) < 1e-5)
    }
    a.central.forEach((rowsOf, c) => {
      assert.equal(rowsOf.length, 5)
      for (const r of rowsOf) assert.equal(a.assignments[r], c)
    })
    assert.ok(Math.abs(a.eigenvalues![0] - 1) < 1e-6, 'the top eigenvalue of D^-1/2 W D^-1/2 is 1')
  })

test('the kNN path (forced) recovers the planted groups as well', () => {
  const { csr, labels } = planted()
  const rows = binarize(csr)
  const knn = clusterDocuments(rows, {
    k: 3,
    seed: 1,
    similarity: 'jaccard',
    exactMaxDocs: 10,
    neighbours: 15,
    postingCap: 64
  })
  assert.equal(knn.similarity, 'jaccard-knn')
  assert.ok(purity(knn.assignments, labels[0]) > 0.9, `purity ${purity(knn.assignments, labels[0])}`)
})

test('spectral: documents that share nothing to compare them by are refused with the reason, not a Lanczos failure', () => {
  const rows = (rowsOf: number[][]) =>
    binarize({
      nDocs: rowsOf.length,
      nLatents: 30,
      indptr: Int32Array.from([0, ...rowsOf.map((_, i) => rowsOf.slice(0, i + 1).flat().length)]),
      latents: Int32Array.from(rowsOf.flat()),
      values: new Float32Array(rowsOf.flat().length).fill(1),
      positions: new Int32Array(rowsOf.flat().length).fill(-1)
    })
  const disjoint = rows(Array.from({ length: 20 }, (_, i) => [i]))
  const everywhere = rows(Array.from({ length: 20 }, () => [0, 1]))
  for (const similarity of ['cosine', 'jaccard'] as const)
    assert.throws(() => clusterDocuments(disjoint, { k: 3, similarity }), NothingSharedError)
  // A latent in every document has weight 0 under cosine: nothing tells documents apart.
  assert.throws(() => clusterDocuments(everywhere, { k: 3 }), /in every document, where its weight is 0/)
})

test('disconnected groups (no shared latents) still give k clusters: locking finds the repeated eigenvalue 1', () => {
  const { csr, labels } = plantedCsr({
    docs: 90,
    nLatents: 60,
    axes: [{ groups: 3, latentsPerGroup: 20, p: 0.5 }],
    noisePerDoc: 0,
    seed: 9
  })
  const out = clusterDocuments(binarize(csr), { k: 3, seed: 2 })
  assert.ok(out.eigenvalues!.every(v => Math.abs(v - 1) < 1e-6))
  assert.equal(purity(out.assignments, labels[0]), 1)
})

test('method kmeans (spherical, on the binarized latents) recovers the planted groups too', () => {
  const { csr, labels } = planted()
  const out = clusterDocuments(binarize(csr), { k: 3, seed: 1, method: 'kmeans' })
  assert.equal(out.similarity, 'cosine')
  assert.ok(purity(out.assignments, labels[0]) > 0.9)
  assert.deepEqual(out.assignments, clusterDocuments(binarize(csr), { k: 3, seed: 1, method: 'kmeans' }).assignments)
})

test("a document with two groups' latents has high affinity to both clusters; no outlier bucket", () => {
  const { csr, labels, groupLatents } = planted()
  // Append 6 documents carrying the latents of groups 0 and 1 (half of each).
  const docs: number[] = [],
    lat: number[] = [],
    vals: number[] = []
  for (let i = 0; i < csr.nDocs; i++)
    for (let k = csr.indptr[i]; k < csr.indptr[i + 1]; k++) {
      docs.push(i)
      lat.push(csr.latents[k])
      vals.push(csr.values[k])
    }
  for (let t = 0; t < 6; t++) {
    for (const g of [0, 1])
      for (const l of groupLatents[0][g].filter((_, q) => (q + t) % 2 === 0)) {
        docs.push(csr.nDocs + t)
        lat.push(l)
        vals.push(1)
      }
  }
  const mixed = csrFromCoo(csr.nDocs + 6, csr.nLatents, docs, lat, vals)
  const out = clusterDocuments(binarize(mixed), { k: 3, seed: 1 })
  const clusterOf = (g: number) => {
    const votes = [0, 0, 0]
    for (let i = 0; i < csr.nDocs; i++) if (labels[0][i] === g) votes[out.assignments[i]]++
    return votes.indexOf(Math.max(...votes))
  }
  const c0 = clusterOf(0),
    c1 = clusterOf(1)
  assert.notEqual(c0, c1)
  for (let t = 0; t < 6; t++) {
    const i = csr.nDocs + t
    const a = out.affinities.subarray(i * 3, i * 3 + 3)
    const other = 3 - c0 - c1
    assert.ok(a[c0] > 0.3 && a[c1] > 0.3, `mixed doc ${t}: ${Array.from(a)}`)
    assert.ok(a[other] < Math.min(a[c0], a[c1]))
    assert.ok(out.assignments[i] === c0 || out.assignments[i] === c1)
  }
})

test("descriptions: each cluster's top latents are its planted group's latents, with labels", () => {
  const { csr, labels, groupLatents } = planted()
  const rows = binarize(csr)
  const out = clusterDocuments(rows, { k: 3, seed: 1 })
  const names = Array.from({ length: csr.nLatents }, (_, l) => `latent ${l}`)
  const desc = describeClusters(rows, out.assignments, 3, names)
  for (let c = 0; c < 3; c++) {
    const votes = [0, 0, 0]
    for (let i = 0; i < csr.nDocs; i++) if (out.assignments[i] === c) votes[labels[0][i]]++
    const g = votes.indexOf(Math.max(...votes))
    assert.equal(desc[c].length, 5)
    for (const d of desc[c]) {
      assert.ok(groupLatents[0][g].includes(d.latent), `cluster ${c} names latent ${d.latent}, not of group ${g}`)
      assert.equal(d.label, `latent ${d.latent}`)
      assert.ok(Math.abs(d.difference - (d.frequencyIn - d.frequencyOut)) < 1e-12 && d.difference > 0.3)
    }
  }
})

test('descriptions equal a full diff of each cluster against the rest (the pre-selection changes nothing)', () => {
  const { csr } = plantedCsr({
    docs: 120,
    nLatents: 150,
    axes: [{ groups: 4, latentsPerGroup: 6, p: 0.4 }],
    noisePerDoc: 30,
    seed: 21
  })
  const rows = binarize(csr)
  const out = clusterDocuments(rows, { k: 4, seed: 3 })
  const desc = describeClusters(rows, out.assignments, 4, [])
  for (let c = 0; c < 4; c++) {
    const a = new Int32Array(csr.nLatents),
      all = new Int32Array(csr.nLatents)
    for (let i = 0; i < csr.nDocs; i++)
      for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) {
        const l = rows.latentOf[rows.cols[p]]
        all[l]++
        if (out.assignments[i] === c) a[l]++
      }
    const full = diffLatents({
      a: { id: 'a', name: 'a', documents: out.sizes[c], counts: a },
      b: [{ id: 'b', name: 'b', documents: csr.nDocs - out.sizes[c], counts: all.map((x, l) => x - a[l]) }],
      labels: [],
      options: { limit: 5, minFrequency: 0, maxFrequency: 1, metric: 'absolute', direction: 'a' }
    })
    assert.deepEqual(
      desc[c].map(d => d.latent),
      full.latents.map(d => d.latent)
    )
  }
})

test('k out of range is refused', () => {
  const rows = binarize(planted().csr)
  assert.throws(() => clusterDocuments(rows, { k: 0 }), /positive integer/)
  assert.throws(() => clusterDocuments(rows, { k: 500 }), /more than/)
})
