/** @module Tests of slice evaluation over columns, and of counts and sub-matrices restricted to slice rows. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  evaluateSlice,
  presenceCountsOfRows,
  valueStatsOfRows,
  selectRows,
  metadataValue,
  strongestInRows,
  type SliceData
} from './slice.ts'
import { csrFromCoo, presenceCounts } from './sparse.ts'
import { parseSliceText } from '../contract/slice.ts'
import { mulberry32 } from '../util/random.ts'

const n = 200
const rand = mulberry32(7)
const models = ['x', 'y', 'z']
const meta = Array.from({ length: n }, (_, i) => ({
  model: models[i % 3],
  score: String(i % 10),
  nested: { k: i % 2 },
  ...(i % 5 ? { topic: 't' } : {})
}))
const tokens = Int32Array.from({ length: n }, (_, i) => 5 + ((i * 37) % 300))
// Latent 4 present in every 4th document with value (i % 7) / 7 (0 at i = 0 mod 7: stored but not present).
const l4docs = Int32Array.from({ length: n / 4 }, (_, j) => j * 4)
const l4values = Float32Array.from(l4docs, d => (d % 7) / 7)
const data: SliceData = {
  nDocs: n,
  documents: {
    row: Int32Array.from({ length: n }, (_, i) => i),
    metadata: meta.map(m => JSON.stringify(m)),
    tokenCount: tokens
  },
  latents: new Map([
    [4, { docs: l4docs, values: l4values }],
    [9, { docs: new Int32Array(0), values: new Float32Array(0) }]
  ])
}
const l4 = (i: number) => (i % 4 === 0 ? (i % 7) / 7 : 0)

/** The slice's rows, by a plain predicate over row i (the reference the evaluator is checked against). */
const where = (f: (i: number) => boolean) => Int32Array.from({ length: n }, (_, i) => i).filter(f)

test('slices evaluate to the rows a plain predicate selects', () => {
  const cases: Array<[string, (i: number) => boolean]> = [
    ['metadata.model = "x"', i => meta[i].model === 'x'],
    ['metadata.model in ("x", "z")', i => meta[i].model !== 'y'],
    ['metadata.model != "x"', i => meta[i].model !== 'x'],
    ['metadata.score >= 7', i => i % 10 >= 7],
    ['metadata.score = 3', i => i % 10 === 3],
    ['metadata.nested.k = 1', i => i % 2 === 1],
    ['metadata.topic exists', i => i % 5 !== 0],
    ['not metadata.topic exists', i => i % 5 === 0],
    ['metadata.missing = "x"', () => false],
    ['tokens >= 100 and tokens < 200', i => tokens[i] >= 100 && tokens[i] < 200],
    ['latent 4', i => l4(i) > 0],
    ['not latent 4', i => !(l4(i) > 0)],
    ['latent 4 > 0.5', i => l4(i) > 0.5],
    ['latent 4 < 0.3', i => l4(i) < 0.3],
    ['latent 9', () => false],
    [
      'metadata.model = "y" and (latent 4 >= 0.4 or tokens < 50)',
      i => meta[i].model === 'y' && (l4(i) >= 0.4 || tokens[i] < 50)
    ]
  ]
  for (const [text, f] of cases) assert.deepEqual(evaluateSlice(parseSliceText(text), data), where(f), text)
})

test('counts over slice rows equal counts of the sub-matrix, and selectRows keeps rows in order', () => {
  const docs: number[] = [],
    latents: number[] = [],
    values: number[] = []
  for (let d = 0; d < 50; d++)
    for (let l = 0; l < 12; l++)
      if (rand() < 0.3) {
        docs.push(d)
        latents.push(l)
        values.push(rand() < 0.1 ? 0 : rand())
      }
  const csr = csrFromCoo(50, 12, docs, latents, values)
  const rows = Int32Array.from([1, 5, 6, 20, 49])
  const sub = selectRows(csr, rows)
  assert.deepEqual(presenceCountsOfRows(csr, rows), presenceCounts(sub))
  // Counts, sums and maxima over the rows, against a plain loop over the entries (zeros are absent).
  const stats = valueStatsOfRows(csr, rows)
  assert.deepEqual(stats.docCount, presenceCounts(sub))
  const inSlice = new Set(rows)
  const sum = new Float64Array(12)
  const max = new Float32Array(12)
  for (let k = 0; k < docs.length; k++) {
    if (!inSlice.has(docs[k]) || !(values[k] > 0)) continue
    sum[latents[k]] += Math.fround(values[k])
    max[latents[k]] = Math.max(max[latents[k]], Math.fround(values[k]))
  }
  assert.deepEqual(stats.max, max)
  for (let l = 0; l < 12; l++) assert.ok(Math.abs(stats.sum[l] - sum[l]) < 1e-9, `latent ${l}`)
  assert.ok(
    stats.docCount.some((c, l) => c > 0 && stats.max[l] > 0),
    'the fixture has present latents'
  )
  for (let i = 0; i < rows.length; i++) {
    assert.deepEqual(
      sub.latents.subarray(sub.indptr[i], sub.indptr[i + 1]),
      csr.latents.subarray(csr.indptr[rows[i]], csr.indptr[rows[i] + 1])
    )
  }
  // A CSR over rows [10, 50) of the dataset answers for dataset rows.
  const tail = {
    ...selectRows(
      csr,
      Int32Array.from({ length: 40 }, (_, i) => i + 10)
    ),
    docStart: 10
  }
  assert.deepEqual(presenceCountsOfRows(tail, [20, 49]), presenceCountsOfRows(csr, [20, 49]))
  assert.throws(() => presenceCountsOfRows(tail, [5]), RangeError)
  assert.equal(metadataValue({ 'a.b': 1, a: { b: 2 } }, 'a.b'), 1)
})

test("strongestInRows: a latent's largest values within the slice's rows, ties to the lower document", () => {
  const docs = Int32Array.from([1, 2, 4, 5, 7, 8, 9, 12])
  const values = Float32Array.from([0.9, 0.5, 0.7, 0, 0.7, 0.95, 0.2, 0.7])
  const rows = Int32Array.from([2, 3, 4, 5, 7, 9, 12, 20])
  // In the slice: 2 (0.5), 4 (0.7), 5 (0: absent), 7 (0.7), 9 (0.2), 12 (0.7); 1 and 8 are outside it.
  assert.deepEqual(
    Array.from(strongestInRows(docs, values, rows, 4), e => docs[e]),
    [4, 7, 12, 2]
  )
  assert.deepEqual(
    Array.from(strongestInRows(docs, values, rows, 100), e => docs[e]),
    [4, 7, 12, 2, 9]
  )
  assert.equal(strongestInRows(docs, values, new Int32Array(0), 5).length, 0)
})
