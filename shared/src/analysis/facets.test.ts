/** @module Tests of facets: which keys qualify, merging parts, and that a slice's facet counts equal counting its rows. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  facetCounts,
  facetFieldsOf,
  facetSliceRows,
  facetSelection,
  facetsOf,
  FacetsMerger,
  mergeFacets,
  MAX_FACET_BLOCKS,
  MAX_FACET_VALUES,
  MAX_LISTED_DROPPED,
  NO_VALUE,
  type Facets
} from './facets.ts'
import { evaluateSlice, presenceCountsOfRows } from './slice.ts'
import { csrFromCoo, type PooledCsr } from './sparse.ts'
import { parseSliceText } from '../contract/slice.ts'
import { mulberry32 } from '../util/random.ts'

const nLatents = 50
const n = 400
const rand = mulberry32(11)
/** Metadata as a user's documents have it: a few-valued model (with a number and the string spelling it), a flag with nulls, an id, a nested object, a dotted key, missing keys and non-object metadata. */
const metadata: string[] = Array.from({ length: n }, (_, i) => {
  if (i % 37 === 0) return ''
  if (i % 41 === 0) return JSON.stringify([1, 2])
  const m: Record<string, unknown> = { id: `doc-${i}` }
  if (i % 7) m.model = ['x', 'y', 'z', 3, '3', true][Math.floor(rand() * 6)]
  if (i % 3) m.flag = [true, false, null][i % 3]
  m.nested = { k: i % 2 }
  m['a.b'] = i % 2
  m.score = i % 20
  return JSON.stringify(m)
})
const tokenCount = Int32Array.from({ length: n }, (_, i) => 3 + ((i * 29) % 200))

function randomCsr(nDocs: number, seed: number): PooledCsr {
  const r = mulberry32(seed)
  const rows: number[] = []
  const cols: number[] = []
  const vals: number[] = []
  for (let d = 0; d < nDocs; d++)
    for (let l = 0; l < nLatents; l++) {
      const p = r()
      if (p < 0.25) {
        rows.push(d)
        cols.push(l)
        // Some stored zeros: present means > 0.
        vals.push(p < 0.02 ? 0 : p)
      }
    }
  return csrFromCoo(nDocs, nLatents, Int32Array.from(rows), Int32Array.from(cols), Float32Array.from(vals))
}
const csr = randomCsr(n, 5)

const rowsOf = (lo: number, hi: number): PooledCsr => {
  const at = csr.indptr[lo]
  return {
    nDocs: hi - lo,
    nLatents,
    indptr: csr.indptr.slice(lo, hi + 1).map(p => p - at),
    latents: csr.latents.slice(at, csr.indptr[hi]),
    values: csr.values.slice(at, csr.indptr[hi]),
    positions: csr.positions.slice(at, csr.indptr[hi])
  }
}

test('facets keep few-valued scalar keys and drop ids, objects, dotted keys and keys past the value limit', () => {
  const f = facetsOf(csr, metadata, tokenCount)
  assert.deepEqual(
    f.fields.map(x => x.key),
    ['flag', 'model', 'score']
  )
  assert.deepEqual(f.dropped, ['a.b', 'id', 'nested'])
  const model = f.fields.find(x => x.key === 'model')!
  // The number 3 and the string "3" are two values (a slice equal to 3 takes both, as on rows).
  assert.deepEqual(new Set(model.values), new Set(['x', 'y', 'z', 3, '3', true]))
  assert.equal(f.docs, n)
  assert.equal(
    f.tokens,
    tokenCount.reduce((s, t) => s + t, 0)
  )
  assert.deepEqual(
    f.total,
    presenceCountsOfRows(
      csr,
      Int32Array.from({ length: n }, (_, i) => i)
    )
  )
  assert.equal(f.fields.find(x => x.key === 'score')!.values.length, 20)

  const many = metadata.map((m, i) => (i % 37 ? JSON.stringify({ k: i % (MAX_FACET_VALUES + 1) }) : m))
  assert.deepEqual(facetsOf(csr, many, tokenCount).dropped, ['k'])
})

test('a slice on one facet key has the counts, documents and tokens of its rows, for every form of condition', () => {
  const f = facetsOf(csr, metadata, tokenCount)
  const slices = [
    'metadata.model = "x"',
    'metadata.model = 3',
    'metadata.model = "3"',
    'metadata.model = true',
    'metadata.model != "x"',
    'metadata.model in ("x", "y", 3)',
    'not metadata.model in ("x", "y")',
    'metadata.model exists',
    'not metadata.model exists',
    'metadata.model >= 3',
    'metadata.model = "nobody"',
    'metadata.model != "nobody"',
    'metadata.flag = null',
    'metadata.flag exists',
    'metadata.flag = false or metadata.flag = null',
    'metadata.score >= 5 and metadata.score < 12',
    'metadata.score < 100',
    'not (metadata.score < 3 or metadata.score > 15)'
  ]
  const row = Int32Array.from({ length: n }, (_, i) => i)
  for (const text of slices) {
    const slice = parseSliceText(text)
    const selection = facetSelection(f, slice)
    assert.ok(selection, text)
    const rows = evaluateSlice(slice, { nDocs: n, documents: { row, metadata, tokenCount } })
    const field = f.fields[selection.field]
    const got = facetCounts(
      f,
      selection,
      selection.values.map(v => field.counts[v]),
      selection.complement ? f.total : null
    )
    assert.equal(got.docs, rows.length, text)
    assert.equal(
      got.tokens,
      Array.from(rows).reduce((s, r) => s + tokenCount[r], 0),
      text
    )
    assert.deepEqual(got.counts, presenceCountsOfRows(csr, rows), text)
    assert.deepEqual(
      facetSliceRows(f, slice, j => f.fields[j].rows),
      rows,
      text
    )
  }
})

test("slices on several facet keys get their rows from the keys' values per document; their counts need rows", () => {
  const f = facetsOf(csr, metadata, tokenCount)
  const row = Int32Array.from({ length: n }, (_, i) => i)
  for (const text of [
    'metadata.model = "x" and metadata.flag = true',
    'metadata.model in ("x", 3) or not metadata.flag exists',
    'not (metadata.score < 5 and metadata.model != "y") or metadata.flag = null',
    '(metadata.model = true or metadata.score >= 18) and not metadata.flag = false'
  ]) {
    const slice = parseSliceText(text)
    assert.equal(facetSelection(f, slice), null, `${text}: no one key's vectors`)
    assert.ok(facetFieldsOf(f, slice), text)
    assert.deepEqual(
      facetSliceRows(f, slice, j => f.fields[j].rows),
      evaluateSlice(slice, { nDocs: n, documents: { row, metadata, tokenCount } }),
      text
    )
  }
  for (const text of ['metadata.model = "x" and tokens > 3', 'metadata.model = "x" and metadata.id = "doc-1"'])
    assert.equal(facetFieldsOf(f, parseSliceText(text)), null, text)
})

test('facets do not answer slices that need rows: two keys, tokens, latents, a key that is no facet', () => {
  const f = facetsOf(csr, metadata, tokenCount)
  for (const text of [
    'metadata.model = "x" and metadata.flag = true',
    'metadata.model = "x" and tokens > 10',
    'metadata.model = "x" and latent 3',
    'metadata.id = "doc-1"',
    'metadata.nested.k = 1',
    'metadata.a.b = 1',
    'latent 3'
  ])
    assert.equal(facetSelection(f, parseSliceText(text)), null, text)
})

test('merging the facets of parts gives the facets of the whole, and a key dropped in one part is dropped in the merge', () => {
  const whole = facetsOf(csr, metadata, tokenCount)
  // The one-document part has no flag: its byte is NO_VALUE in the merge.
  const cut = [0, 90, 91, 250, n]
  let merged: Facets | null = null
  const merger = new FacetsMerger()
  for (let p = 0; p + 1 < cut.length; p++) {
    const part = facetsOf(
      rowsOf(cut[p], cut[p + 1]),
      metadata.slice(cut[p], cut[p + 1]),
      tokenCount.slice(cut[p], cut[p + 1])
    )
    merged = merged ? mergeFacets(merged, part) : part
    merger.add(part)
  }
  // Two at a time or all in one pass: the same facets.
  assert.deepEqual(merger.result(), merged)
  const byKey = (f: Facets) =>
    Object.fromEntries(
      f.fields.map(x => [
        x.key,
        {
          // Each document's value, whatever its index.
          rows: Array.from(x.rows, i => (i === NO_VALUE ? undefined : JSON.stringify(x.values[i]))),
          values: Object.fromEntries(
            x.values.map((v, i) => [JSON.stringify(v), { docs: x.docs[i], tokens: x.tokens[i], counts: x.counts[i] }])
          )
        }
      ])
    )
  assert.deepEqual(byKey(merged!), byKey(whole))
  assert.deepEqual(merged!.total, whole.total)
  assert.deepEqual([merged!.docs, merged!.tokens, merged!.dropped], [whole.docs, whole.tokens, whole.dropped])

  // "tier" has few values in each part but too many in all: the merge drops it, in either order.
  const tiered = metadata.map((m, i) => (m.startsWith('{') ? JSON.stringify({ ...JSON.parse(m), tier: i }) : m))
  const a = facetsOf(rowsOf(0, 30), tiered.slice(0, 30), tokenCount.slice(0, 30))
  const b = facetsOf(rowsOf(30, 60), tiered.slice(30, 60), tokenCount.slice(30, 60))
  assert.ok(a.fields.some(x => x.key === 'tier'))
  for (const m of [mergeFacets(a, b), mergeFacets(b, a)]) {
    assert.ok(!m.fields.some(x => x.key === 'tier'))
    assert.ok(m.dropped.includes('tier'))
  }
  // A key dropped in one part (a non-scalar value there) is dropped from the merge, whatever the other part says.
  const objectInB = tiered
    .slice(30, 60)
    .map(m => (m.startsWith('{') ? JSON.stringify({ ...JSON.parse(m), model: { x: 1 } }) : m))
  const b2 = facetsOf(rowsOf(30, 60), objectInB, tokenCount.slice(30, 60))
  assert.ok(!mergeFacets(a, b2).fields.some(x => x.key === 'model'))
})

test('keys past the block budget are dropped, in key order, so every part drops the same ones', () => {
  const keys = Math.ceil(MAX_FACET_BLOCKS / 10) + 2
  const wide = Array.from({ length: n }, (_, i) =>
    JSON.stringify(
      Object.fromEntries(Array.from({ length: keys }, (_, k) => [`k${String(k).padStart(2, '0')}`, i % 10]))
    )
  )
  const f = facetsOf(csr, wide, tokenCount)
  const blocks = 1 + f.fields.reduce((s, x) => s + x.values.length, 0)
  assert.ok(blocks <= MAX_FACET_BLOCKS)
  assert.deepEqual(
    [...f.fields.map(x => x.key), ...f.dropped].sort(),
    Array.from({ length: keys }, (_, k) => `k${String(k).padStart(2, '0')}`)
  )
  assert.ok(f.fields.every(x => f.dropped.every(d => x.key < d)))
})

test('past MAX_LISTED_DROPPED dropped keys, a merge keeps only keys both sides count', () => {
  // Part a: every document has keys of its own holding objects (all dropped, more than are listed) and a model.
  const a = facetsOf(
    rowsOf(0, 100),
    Array.from({ length: 100 }, (_, i) =>
      JSON.stringify({
        model: i % 2 ? 'x' : 'y',
        ...Object.fromEntries(Array.from({ length: 4 }, (_, k) => [`k${i * 4 + k}`, { v: k }]))
      })
    ),
    tokenCount.slice(0, 100)
  )
  assert.equal(a.droppedMore, true)
  assert.equal(a.dropped.length, MAX_LISTED_DROPPED)
  // Part b counts model and zz; part a never listed zz, but may have dropped it unlisted: the merge drops it.
  const b = facetsOf(
    rowsOf(100, 200),
    Array.from({ length: 100 }, (_, i) => JSON.stringify({ model: 'x', zz: i % 3 })),
    tokenCount.slice(100, 200)
  )
  assert.ok(!b.droppedMore)
  for (const m of [mergeFacets(a, b), mergeFacets(b, a)]) {
    assert.deepEqual(
      m.fields.map(f => f.key),
      ['model']
    )
    assert.equal(m.droppedMore, true)
    assert.ok(m.dropped.length <= MAX_LISTED_DROPPED)
    assert.equal(
      m.fields[0].docs.reduce((s, n) => s + n, 0),
      200
    )
  }
})
