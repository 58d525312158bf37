/** @module Tests for the sparse Parquet shards: round trips, row-group planning, and bytes actually fetched. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parquetMetadata } from 'hyparquet'
import { csrFromCoo, cscFromCsr, type PooledCsr } from '../analysis/sparse.ts'
import type { ShardFile } from '../contract/manifest.ts'
import { CountingObjectStore, MemoryObjectStore } from './memory-store.ts'
import { FOOTER_FETCH_BYTES } from './format.ts'
import { clearShardMetadataCache, planRowGroupRuns } from './parquet/read.ts'
import { readByDocument } from './latent-shards/read-by-document.ts'
import { readByLatent, readPositionsAt } from './latent-shards/read-by-latent.ts'
import { readDocuments } from './documents/read.ts'
import { writeDocumentsShard } from './documents/write.ts'
import { writeLatentShards } from './latent-shards/write.ts'
import { cscKey } from './latent-shards/csc.ts'
import { sidecarLatentStats, slicePresenceCounts } from './latent-shards/slice-counts.ts'
import { accumulatePresenceAndTop, presenceCountsOfRows, selectRows, valueStatsOfRows } from '../analysis/slice.ts'
import { presence } from '../analysis/cooccurrence.ts'
import type { DocumentColumns } from './documents/columns.ts'

const PREFIX = 't/datasets/d/'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

/** A random pooled CSR; some documents have no latent at all, and low latent ids are far more frequent. */
function randomCsr(nDocs: number, nLatents: number, perDoc: number, seed: number): PooledCsr {
  const r = rng(seed)
  const docs: number[] = []
  const latents: number[] = []
  const values: number[] = []
  const positions: number[] = []
  for (let d = 0; d < nDocs; d++) {
    if (r() < 0.05) continue
    const seen = new Set<number>()
    const n = 1 + Math.floor(r() * perDoc * 2)
    for (let k = 0; k < n; k++) {
      const l = Math.floor(r() ** 2 * nLatents)
      if (seen.has(l)) continue
      seen.add(l)
      docs.push(d)
      latents.push(l)
      values.push(Math.fround(-Math.log(r() + 1e-12)))
      positions.push(Math.floor(r() * 300))
    }
  }
  return csrFromCoo(nDocs, nLatents, docs, latents, values, positions)
}

function sliceCsr(m: PooledCsr, start: number, end: number): PooledCsr {
  const a = m.indptr[start]
  const b = m.indptr[end]
  return {
    nDocs: end - start,
    nLatents: m.nLatents,
    indptr: m.indptr.slice(start, end + 1).map(x => x - a),
    latents: m.latents.slice(a, b),
    values: m.values.slice(a, b),
    positions: m.positions.slice(a, b)
  }
}

function assertCsrEqual(got: PooledCsr, want: PooledCsr): void {
  assert.equal(got.nDocs, want.nDocs)
  assert.equal(got.nLatents, want.nLatents)
  assert.deepEqual(got.indptr, want.indptr)
  assert.deepEqual(got.latents, want.latents)
  assert.deepEqual(got.values, want.values)
  assert.deepEqual(got.positions, want.positions)
}

/** The whole matrix written as two parts (two chunks encoded in parallel), as the worker does. */
async function writeParts(store: MemoryObjectStore, m: PooledCsr, split: number, rowGroupRows: number) {
  const byDocument: ShardFile[] = []
  const byLatent: ShardFile[] = []
  for (const [part, [a, b]] of [
    [0, split],
    [split, m.nDocs]
  ].entries()) {
    const shards = writeLatentShards(sliceCsr(m, a, b), { docOffset: a, rowGroupRows })
    const kd = `latents/by-document/part-${part}.parquet`
    const kl = `latents/by-latent/part-${part}.parquet`
    await store.put(PREFIX + kd, shards.byDocument.bytes)
    await store.put(PREFIX + kl, shards.byLatent.bytes)
    await store.put(PREFIX + cscKey(kl), shards.byLatent.csc!)
    byDocument.push({ key: kd, ...shards.byDocument.file })
    byLatent.push({ key: kl, ...shards.byLatent.file })
  }
  // Listed out of order on purpose: readers must not depend on the manifest's file order.
  return { byDocument: byDocument.reverse(), byLatent: byLatent.reverse() }
}

test('latent shards: the row-group index matches the written file and the sort keys', () => {
  const m = randomCsr(800, 500, 20, 1)
  const { byDocument, byLatent } = writeLatentShards(m, { docOffset: 100, rowGroupRows: 2000 })
  const nnz = m.latents.length
  for (const [shard, sortKey] of [
    [byDocument, 'doc'],
    [byLatent, 'latent']
  ] as const) {
    const meta = parquetMetadata(shard.bytes.buffer as ArrayBuffer)
    assert.equal(Number(meta.num_rows), nnz)
    assert.equal(shard.file.rows, nnz)
    assert.equal(shard.file.bytes, shard.bytes.length)
    assert.equal(shard.file.docStart, 100)
    assert.equal(shard.file.docCount, 800)
    assert.deepEqual(
      shard.file.rowGroups.map(g => g.rowCount),
      meta.row_groups.map(g => Number(g.num_rows))
    )
    let at = 0
    for (const g of shard.file.rowGroups) {
      assert.equal(g.rowStart, at)
      at += g.rowCount
      assert.ok(g.first <= g.last)
    }
    // Sorted keys: each group starts at or after the previous one ended.
    for (let i = 1; i < shard.file.rowGroups.length; i++)
      assert.ok(shard.file.rowGroups[i].first >= shard.file.rowGroups[i - 1].last)
    const encodings = meta.row_groups[0].columns.map(c => c.meta_data!.encodings.join('+'))
    assert.deepEqual(encodings, [
      'DELTA_BINARY_PACKED',
      'DELTA_BINARY_PACKED',
      'BYTE_STREAM_SPLIT',
      'DELTA_BINARY_PACKED'
    ])
    assert.equal(meta.schema[1].name, sortKey)
  }
  assert.equal(byDocument.file.rowGroups[0].first, 100 + [...m.indptr].findIndex((x, i) => m.indptr[i + 1] > x))
  assert.equal(byLatent.file.rowGroups.at(-1)!.last, Math.max(...m.latents))
})

test('latent shards: unsorted or inconsistent CSRs are refused', () => {
  const m = csrFromCoo(2, 10, [0, 0], [3, 5], [1, 2])
  writeLatentShards(m)
  const swapped = { ...m, latents: Int32Array.from([5, 3]) }
  assert.throws(() => writeLatentShards(swapped), /not sorted/)
  assert.throws(() => writeLatentShards({ ...m, latents: Int32Array.from([3, 12]) }), /out of range/)
})

test('readByDocument: whole dataset and document ranges, across parts', async () => {
  const store = new MemoryObjectStore()
  const m = randomCsr(3000, 1500, 25, 2)
  const files = await writeParts(store, m, 1700, 5000)
  assertCsrEqual(await readByDocument(store, PREFIX, files.byDocument), m)
  for (const [first, last] of [
    [0, 0],
    [5, 5],
    [1650, 1760],
    [1699, 1700],
    [2990, 2999],
    [0, 2999]
  ]) {
    const got = await readByDocument(store, PREFIX, files.byDocument, [first, last])
    assert.equal(got.docStart, first)
    assertCsrEqual(got, sliceCsr(m, first, last + 1))
  }
  const half = await readByDocument(store, PREFIX, files.byDocument, { start: 100, end: 200 })
  assertCsrEqual(half, sliceCsr(m, 100, 200))
  // nDocs comes from the shards' doc ranges, so trailing documents without latents still count.
  assert.equal((await readByDocument(store, PREFIX, files.byDocument)).nDocs, 3000)
})

test('readByLatent: a list or a range of latents, other columns empty, docs sorted across parts', async () => {
  const store = new MemoryObjectStore()
  const m = randomCsr(3000, 1500, 25, 3)
  const files = await writeParts(store, m, 1300, 4000)
  const full = cscFromCsr(m)
  const check = (got: Awaited<ReturnType<typeof readByLatent>>, wanted: (j: number) => boolean) => {
    assert.equal(got.nLatents, 1500)
    assert.equal(got.nDocs, 3000)
    for (let j = 0; j < 1500; j++) {
      const [a, b] = [got.indptr[j], got.indptr[j + 1]]
      if (!wanted(j)) {
        assert.equal(b - a, 0, `latent ${j} should be empty`)
        continue
      }
      const [fa, fb] = [full.indptr[j], full.indptr[j + 1]]
      assert.deepEqual(got.docs.subarray(a, b), full.docs.subarray(fa, fb), `docs of latent ${j}`)
      assert.deepEqual(got.values.subarray(a, b), full.values.subarray(fa, fb))
      assert.deepEqual(got.positions.subarray(a, b), full.positions.subarray(fa, fb))
    }
  }
  const list = [0, 7, 7, 300, 1499, 42]
  check(await readByLatent(store, PREFIX, files.byLatent, list), j => list.includes(j))
  check(await readByLatent(store, PREFIX, files.byLatent, { start: 200, end: 260 }), j => j >= 200 && j < 260)
  check(await readByLatent(store, PREFIX, files.byLatent, Int32Array.from([1200])), j => j === 1200)
})

test('readByLatent without positions: the same columns, file rows in their place, positions read at those rows', async () => {
  const inner = new MemoryObjectStore()
  const m = randomCsr(6000, 1500, 30, 11)
  // Small row groups and pages: entries of one latent span several pages, groups and both files.
  const files = (await writeParts(inner, m, 2500, 20000)).byLatent
  const latents = [3, 250, 251, 900, 1499]
  const store = new CountingObjectStore(inner)
  const withPositions = await readByLatent(store, PREFIX, files, latents)
  const fetched = store.fetches.length
  const rows = await readByLatent(store, PREFIX, files, latents, {}, { positions: false })
  assert.equal(rows.fileRows, true)
  assert.equal(withPositions.fileRows, undefined)
  assert.deepEqual(rows.indptr, withPositions.indptr)
  assert.deepEqual(rows.docs, withPositions.docs)
  assert.deepEqual(rows.values, withPositions.values)
  assert.ok(store.fetches.length - fetched < fetched, 'the position column is not fetched')
  // Every entry's position, read at its file row, is the one read with the columns; -1 stays -1.
  const docs = Int32Array.from(rows.docs)
  const at = Int32Array.from(rows.positions)
  at[1] = -1
  const got = await readPositionsAt(inner, PREFIX, files, docs, at)
  const want = Int32Array.from(withPositions.positions)
  want[1] = -1
  assert.deepEqual(got, want)
  // Files that do not say which documents they hold: positions are read as before.
  const bare = files.map(({ docStart, docCount, ...f }) => f)
  const old = await readByLatent(inner, PREFIX, bare, latents, {}, { positions: false })
  assert.equal(old.fileRows, undefined)
  assert.deepEqual(old.positions, withPositions.positions)
})

test('without positions, readByLatent reads the sidecars: the Parquet answer, one read per run of latents and file', async () => {
  const inner = new MemoryObjectStore()
  const m = randomCsr(6000, 1500, 30, 12)
  const files = (await writeParts(inner, m, 2500, 20000)).byLatent
  assert.ok(files.every(f => f.cscBytes! > 0))
  const fromParquet = files.map(({ cscBytes, ...f }) => f)
  const store = new CountingObjectStore(inner)
  for (const want of [[3, 250, 251, 252, 900, 1499], { start: 100, end: 180 }, [1200], [7, 7, 1600]]) {
    const reference = await readByLatent(inner, PREFIX, fromParquet, want, {}, { positions: false })
    clearShardMetadataCache()
    store.reset()
    const got = await readByLatent(store, PREFIX, files, want, {}, { positions: false })
    for (const k of ['nDocs', 'nLatents', 'indptr', 'docs', 'values', 'positions', 'fileRows'] as const)
      assert.deepEqual(got[k], reference[k], `${JSON.stringify(want)}: ${k}`)
    assert.ok(
      store.fetches.every(f => f.key.endsWith('.csc')),
      'no Parquet page or footer is fetched'
    )
    // Per file: the header, the indptr, then one range per run of consecutive latents (250-252 is one run).
    const runs = Array.isArray(want)
      ? [...new Set(want)]
          .filter(l => l < 1500)
          .sort((a, b) => a - b)
          .filter((l, i, a) => i === 0 || l !== a[i - 1] + 1).length
      : 1
    assert.ok(
      store.fetches.length <= files.length * (2 + runs),
      `${store.fetches.length} reads for ${JSON.stringify(want)}`
    )
  }
  // Runs of wanted latents close to each other in a file (here a latent or two apart) are one read per file.
  clearShardMetadataCache()
  store.reset()
  const close = await readByLatent(store, PREFIX, files, [5, 7, 9], {}, { positions: false })
  assert.deepEqual(
    close.docs,
    (await readByLatent(inner, PREFIX, fromParquet, [5, 7, 9], {}, { positions: false })).docs
  )
  assert.ok(store.fetches.length <= files.length * 3, `${store.fetches.length} reads for three close latents`)
  // A missing sidecar, or one whose size disagrees with the manifest: the same answer, that file from its Parquet
  // shard (the others still from their sidecars), and the caller told which sidecar failed.
  const reference = await readByLatent(inner, PREFIX, fromParquet, [5, 6, 700], {}, { positions: false })
  await inner.delete(PREFIX + cscKey(files[0].key))
  clearShardMetadataCache()
  const failed: string[] = []
  const onSidecarError = (key: string) => void failed.push(key)
  store.reset()
  const missing = await readByLatent(store, PREFIX, files, [5, 6, 700], {}, { positions: false, onSidecarError })
  assert.deepEqual(missing.docs, reference.docs)
  assert.deepEqual(missing.positions, reference.positions)
  assert.deepEqual(failed, [PREFIX + cscKey(files[0].key)])
  assert.ok(store.fetches.some(f => f.key === PREFIX + files[0].key))
  assert.ok(!store.fetches.some(f => files.slice(1).some(g => f.key === PREFIX + g.key)), 'other files: sidecars only')
  const wrongSize = files.map(f => ({ ...f, cscBytes: f.cscBytes! + 4 }))
  clearShardMetadataCache()
  failed.length = 0
  const damaged = await readByLatent(inner, PREFIX, wrongSize, [5, 6, 700], {}, { positions: false, onSidecarError })
  assert.deepEqual(damaged.values, reference.values)
  assert.equal(failed.length, files.length)
  // Without a handler: one warning per sidecar, however often it fails.
  const warnings: string[] = []
  const warn = console.warn
  console.warn = (line: string) => void warnings.push(line)
  try {
    for (let i = 0; i < 3; i++) await readByLatent(inner, PREFIX, files, [5, 6, 700], {}, { positions: false })
  } finally {
    console.warn = warn
  }
  assert.equal(warnings.length, 1)
  assert.match(warnings[0], /sidecar .*\.csc unreadable \(object not found/)
})

test("slicePresenceCounts: every slice's counts from the sidecars in small chunks, only files holding its rows, null without sidecars", async () => {
  const inner = new MemoryObjectStore()
  const m = randomCsr(6000, 1500, 30, 21)
  const files = (await writeParts(inner, m, 2500, 20000)).byLatent
  const r = rng(5)
  const pick = (lo: number, hi: number, share: number) => {
    const rows: number[] = []
    for (let d = lo; d < hi; d++) if (r() < share) rows.push(d)
    return Int32Array.from(rows)
  }
  // Ten slices (two passes of eight), one of them within the first file's documents only.
  const slices = [
    pick(0, 6000, 0.3),
    pick(100, 2000, 0.5),
    ...Array.from({ length: 8 }, (_, i) => pick(0, 6000, 0.05 * (i + 1)))
  ]
  const shape = { nDocs: m.nDocs, nLatents: m.nLatents }
  const store = new CountingObjectStore(inner)
  for (const chunkBytes of [4096, 8 << 20]) {
    store.reset()
    const got = await slicePresenceCounts(store, PREFIX, files, slices, shape, { chunkBytes })
    assert.ok(got)
    for (const [i, rows] of slices.entries())
      assert.deepEqual(got[i], presenceCountsOfRows(m, rows), `slice ${i}, chunks of ${chunkBytes}`)
    assert.ok(
      store.fetches.every(f => f.key.endsWith('.csc')),
      'sidecars only'
    )
  }
  store.reset()
  const [early] = (await slicePresenceCounts(store, PREFIX, files, [slices[1]], shape))!
  assert.deepEqual(early, presenceCountsOfRows(m, slices[1]))
  const second = files.find(f => f.docStart === 2500)!
  assert.ok(
    !store.fetches.some(f => f.key === PREFIX + cscKey(second.key)),
    'the file without a row of the slice is not read'
  )

  // No sidecar listed, or one that cannot be read: null (the caller counts from the by-document shards), and told.
  assert.equal(
    await slicePresenceCounts(
      inner,
      PREFIX,
      files.map(({ cscBytes, ...f }) => f),
      slices,
      shape
    ),
    null
  )
  const failed: string[] = []
  const wrongSize = files.map(f => ({ ...f, cscBytes: f.cscBytes! + 4 }))
  const onSidecarError = (key: string) => void failed.push(key)
  assert.equal(await slicePresenceCounts(inner, PREFIX, wrongSize, [slices[0]], shape, { onSidecarError }), null)
  assert.equal(failed.length, 1)
  assert.match(failed[0], /\.csc$/)
})

test('sidecarLatentStats: counts and top values of a slice or of every document, under thresholds, as the CSR gives them', async () => {
  const store = new MemoryObjectStore()
  const m = randomCsr(5000, 800, 25, 33)
  const files = (await writeParts(store, m, 1800, 20000)).byLatent
  const shape = { nDocs: m.nDocs, nLatents: m.nLatents }
  const r = rng(9)
  const rows = Int32Array.from({ length: m.nDocs }, (_, i) => i).filter(() => r() < 0.4)
  const K = 16
  // Reference: the chunk pass correlations make over the by-document rows.
  const sliced = selectRows(m, rows)
  const docCount = new Int32Array(m.nLatents)
  const topValues = new Float32Array(m.nLatents * K)
  accumulatePresenceAndTop(sliced, docCount, topValues, K)
  const got = await sidecarLatentStats(store, PREFIX, files, rows, shape, { topK: K, chunkBytes: 4096 })
  assert.deepEqual(got?.docCount, docCount)
  assert.deepEqual(got?.topValues, topValues)
  assert.equal(got?.sum, undefined, 'sums only when asked')
  // Sums and maxima of the slice (a latent list's columns), as the rows of the CSR give them.
  const withValues = await sidecarLatentStats(store, PREFIX, files, rows, shape, { values: true, chunkBytes: 4096 })
  const reference = valueStatsOfRows(m, rows)
  assert.deepEqual(withValues?.docCount, reference.docCount)
  assert.deepEqual(withValues?.max, reference.max)
  for (let l = 0; l < m.nLatents; l++) {
    // Files are scanned concurrently, so a latent's values may be added in another order: equal to rounding.
    assert.ok(Math.abs(withValues!.sum![l] - reference.sum[l]) <= 1e-9 * Math.max(1, reference.sum[l]), `latent ${l}`)
  }
  // Presence under per-latent thresholds, for the slice and for every document.
  const minValue = Float32Array.from({ length: m.nLatents }, (_, l) => (l % 3) * 0.5)
  for (const [which, matrix] of [
    [rows, sliced],
    [null, m]
  ] as const) {
    const thresholded = await sidecarLatentStats(store, PREFIX, files, which, shape, { minValue })
    assert.deepEqual(thresholded?.docCount, presence(matrix, minValue), which ? 'slice' : 'every document')
    assert.equal(thresholded?.topValues, undefined)
  }
  assert.equal(
    await sidecarLatentStats(
      store,
      PREFIX,
      files.map(({ cscBytes, ...f }) => f),
      rows,
      shape,
      {}
    ),
    null
  )
})

test('planRowGroupRuns merges adjacent overlapping groups and skips the rest', () => {
  const groups = [
    { rowStart: 0, rowCount: 10, first: 0, last: 3 },
    { rowStart: 10, rowCount: 10, first: 3, last: 6 },
    { rowStart: 20, rowCount: 10, first: 6, last: 9 },
    { rowStart: 30, rowCount: 10, first: 9, last: 12 }
  ]
  assert.deepEqual(
    planRowGroupRuns(groups, (f, l) => l >= 6 && f <= 6),
    [[10, 30]]
  )
  assert.deepEqual(
    planRowGroupRuns(groups, (f, l) => (l >= 0 && f <= 1) || (l >= 11 && f <= 11)),
    [
      [0, 10],
      [30, 40]
    ]
  )
  assert.deepEqual(
    planRowGroupRuns(groups, (f, l) => l >= 20 && f <= 20),
    []
  )
})

/** Byte span [start, end) of every row group's column chunks, from the footer. */
function groupSpans(bytes: Uint8Array): Array<[number, number]> {
  const meta = parquetMetadata(bytes.buffer as ArrayBuffer)
  return meta.row_groups.map(g => {
    let lo = Infinity
    let hi = 0
    for (const c of g.columns) {
      const md = c.meta_data!
      const start = Number(md.dictionary_page_offset || md.data_page_offset)
      lo = Math.min(lo, start)
      hi = Math.max(hi, start + Number(md.total_compressed_size))
    }
    return [lo, hi]
  })
}

test('a latent-range read fetches the footer and the needed row groups, nothing else', async () => {
  const inner = new MemoryObjectStore()
  const m = randomCsr(12000, 4000, 30, 4) // ~350k pooled latents, ~40 row groups
  const { byLatent } = writeLatentShards(m, { rowGroupRows: 8000 })
  await inner.put(PREFIX + 'by-latent.parquet', byLatent.bytes)
  const file: ShardFile = { key: 'by-latent.parquet', ...byLatent.file }
  const spans = groupSpans(byLatent.bytes)
  const size = byLatent.bytes.length
  assert.ok(size > 8 * FOOTER_FETCH_BYTES, `file of ${size} bytes is big enough for the check`)

  const store = new CountingObjectStore(inner)
  const range = { start: 1800, end: 1830 }
  const got = await readByLatent(store, PREFIX, [file], range)
  const needed = file.rowGroups
    .map((g, i) => ({ g, i }))
    .filter(({ g }) => g.last >= range.start && g.first < range.end)
    .map(({ i }) => i)
  assert.ok(needed.length >= 1 && needed.length < 6, `${needed.length} groups needed`)
  const neededBytes = needed.reduce((s, i) => s + spans[i][1] - spans[i][0], 0)
  const tail = size - FOOTER_FETCH_BYTES
  const indexes = spans[spans.length - 1][1] // page indexes sit between the last row group and the footer
  for (const f of store.fetches) {
    const inTail = f.start >= tail
    const inIndexes = f.start >= indexes
    const inNeeded = needed.some(i => f.start >= spans[i][0] && f.end <= spans[i][1])
    assert.ok(
      inTail || inIndexes || inNeeded,
      `fetch [${f.start}, ${f.end}) is outside the footer, the page indexes and the needed row groups`
    )
  }
  // The page index narrows reads below whole row groups: only the pages holding latents 1800-1829.
  const groupBytesRead = store.fetches
    .filter(f => f.start < indexes && f.start < tail)
    .reduce((s, f) => s + f.end - f.start, 0)
  assert.ok(
    groupBytesRead < neededBytes,
    `read ${groupBytesRead} bytes of pages, less than the ${neededBytes} of the needed row groups`
  )
  assert.ok(store.bytesRead < size / 4, `read ${store.bytesRead} of ${size} bytes`)
  assert.equal(
    got.indptr[range.end] - got.indptr[range.start],
    cscFromCsr(m).indptr[range.end] - cscFromCsr(m).indptr[range.start]
  )

  // The footer is cached per store: a second read fetches row groups only.
  store.reset()
  await readByLatent(store, PREFIX, [file], [3])
  assert.ok(
    store.fetches.every(f => f.start < tail),
    'no footer fetch the second time'
  )
})

test('one latent in 100k-row groups costs a few pages, not the column chunks, and reads back exactly', async () => {
  const inner = new MemoryObjectStore()
  const m = randomCsr(20000, 2000, 40, 7) // ~800k pooled latents: every group spans ~250 latents
  const { byLatent } = writeLatentShards(m)
  await inner.put(PREFIX + 'by-latent.parquet', byLatent.bytes)
  const file: ShardFile = { key: 'by-latent.parquet', ...byLatent.file }
  const spans = groupSpans(byLatent.bytes)
  const store = new CountingObjectStore(inner)
  const latent = 777
  const got = await readByLatent(store, PREFIX, [file], [latent])
  const expected = cscFromCsr(m)
  const a = expected.indptr[latent],
    b = expected.indptr[latent + 1]
  assert.deepEqual(
    Array.from(got.docs.subarray(got.indptr[latent], got.indptr[latent + 1])),
    Array.from(expected.docs.subarray(a, b))
  )
  assert.deepEqual(
    Array.from(got.values.subarray(got.indptr[latent], got.indptr[latent + 1])),
    Array.from(expected.values.subarray(a, b))
  )
  assert.deepEqual(
    Array.from(got.positions.subarray(got.indptr[latent], got.indptr[latent + 1])),
    Array.from(expected.positions.subarray(a, b))
  )
  const indexes = spans[spans.length - 1][1]
  const pageBytes = store.fetches.filter(f => f.start < indexes).reduce((s, f) => s + f.end - f.start, 0)
  const group = file.rowGroups.findIndex(g => g.first <= latent && g.last >= latent)
  const groupBytes = spans[group][1] - spans[group][0]
  assert.ok(
    pageBytes * 4 < groupBytes,
    `read ${pageBytes} bytes of pages for one latent; its row group is ${groupBytes} bytes`
  )
})

function sampleDocuments(n: number, rowStart: number, withMessages: boolean): DocumentColumns {
  const r = rng(n + rowStart)
  const words = ['whale', 'ship', 'Ahab', 'sea', 'ïle', '日本', 'tax', 'nation', 'free', 'offer', '🐋']
  const text = Array.from(
    { length: n },
    (_, i) =>
      Array.from({ length: 20 + Math.floor(r() * 400) }, () => words[Math.floor(r() * words.length)]).join(' ') +
      ` #${rowStart + i}`
  )
  return {
    row: Int32Array.from({ length: n }, (_, i) => rowStart + i),
    id: Array.from({ length: n }, (_, i) => `doc-${rowStart + i}`),
    text,
    metadata: Array.from({ length: n }, (_, i) => JSON.stringify({ split: i % 3 ? 'train' : 'test', n: i })),
    token_count: Int32Array.from(text, t => t.split(' ').length),
    truncated: Uint8Array.from({ length: n }, (_, i) => (i % 17 === 0 ? 1 : 0)),
    masked_tokens: Int32Array.from({ length: n }, (_, i) => i % 5),
    ...(withMessages
      ? { messages: text.map(t => JSON.stringify([{ role: 'assistant', content: t.slice(0, 20) }])) }
      : {})
  }
}

test('documents shards: round trip of every column, by list, range and all, across parts', async () => {
  const inner = new MemoryObjectStore()
  const parts = [sampleDocuments(900, 0, false), sampleDocuments(700, 900, true)]
  const files: ShardFile[] = []
  for (const [i, cols] of parts.entries()) {
    const w = writeDocumentsShard(cols, { rowGroupBytes: 64 << 10 })
    assert.ok(w.file.rowGroups.length > 3, 'row groups cut by text size')
    assert.deepEqual([w.file.docStart, w.file.docCount], [cols.row[0], cols.row.length])
    await inner.put(`${PREFIX}documents/part-${i}.parquet`, w.bytes)
    files.push({ key: `documents/part-${i}.parquet`, ...w.file })
  }
  const all = await readDocuments(inner, PREFIX, files, undefined, [
    'row',
    'id',
    'text',
    'metadata',
    'token_count',
    'truncated',
    'masked_tokens',
    'messages'
  ])
  assert.equal(all.row.length, 1600)
  for (const [i, cols] of parts.entries()) {
    const at = i === 0 ? 0 : 900
    const n = cols.row.length
    assert.deepEqual(all.row.subarray(at, at + n), cols.row)
    assert.deepEqual(all.id.slice(at, at + n), cols.id)
    assert.deepEqual(all.text.slice(at, at + n), cols.text)
    assert.deepEqual(all.metadata.slice(at, at + n), cols.metadata)
    assert.deepEqual(all.token_count.subarray(at, at + n), cols.token_count)
    assert.deepEqual(all.truncated.subarray(at, at + n), cols.truncated)
    assert.deepEqual(all.masked_tokens.subarray(at, at + n), cols.masked_tokens)
    assert.deepEqual(all.messages.slice(at, at + n), cols.messages ?? new Array(n).fill(''))
  }
  const some = await readDocuments(inner, PREFIX, files, [1599, 3, 899, 900, 3, 5000], ['text'])
  assert.deepEqual([...some.row], [3, 899, 900, 1599]) // ascending, once each, the missing row left out
  assert.deepEqual(some.text, [all.text[3], all.text[899], all.text[900], all.text[1599]])
  assert.equal((some as Record<string, unknown>).metadata, undefined)
  const range = await readDocuments(inner, PREFIX, files, { start: 850, end: 950 }, ['id'])
  assert.deepEqual(range.id, all.id.slice(850, 950))
  // Scattered rows (a slice's): narrow columns are read in long spans, text in short ones; the same values either way.
  const scattered = Int32Array.from({ length: 1600 }, (_, i) => i).filter(i => i % 37 === 5 || i % 101 === 0)
  for (const columns of [
    ['token_count', 'metadata'],
    ['text', 'token_count']
  ] as const) {
    const got = await readDocuments(inner, PREFIX, files, scattered, columns)
    assert.deepEqual(got.row, scattered)
    for (const name of columns)
      assert.deepEqual(
        Array.from(got[name] as ArrayLike<unknown>),
        Array.from(scattered, r => (all[name] as ArrayLike<unknown>)[r]),
        name
      )
  }

  // One document out of a multi-MB shard costs the footer and about one page, not the shard.
  const big = writeDocumentsShard(sampleDocuments(6000, 0, false))
  await inner.put(`${PREFIX}documents/big.parquet`, big.bytes)
  const store = new CountingObjectStore(inner)
  const one = await readDocuments(store, PREFIX, [{ key: 'documents/big.parquet', ...big.file }], [4321])
  assert.equal(one.id[0], 'doc-4321')
  assert.ok(store.bytesRead < big.bytes.length / 3, `read ${store.bytesRead} of ${big.bytes.length} bytes`)
})

test('an empty chunk (no pooled latents) writes valid shards that read back empty', async () => {
  const store = new MemoryObjectStore()
  const m = csrFromCoo(5, 100, [], [], [])
  const { byDocument, byLatent } = writeLatentShards(m, { docOffset: 10 })
  assert.deepEqual(byDocument.file.rowGroups, [])
  await store.put(PREFIX + 'a.parquet', byDocument.bytes)
  await store.put(PREFIX + 'b.parquet', byLatent.bytes)
  const csr = await readByDocument(store, PREFIX, [{ key: 'a.parquet', ...byDocument.file }], [10, 14])
  assert.equal(csr.nDocs, 5)
  assert.equal(csr.indptr[5], 0)
  const csc = await readByLatent(store, PREFIX, [{ key: 'b.parquet', ...byLatent.file }], [1, 2])
  assert.equal(csc.docs.length, 0)
  await store.put(PREFIX + cscKey('b.parquet'), byLatent.csc!)
  const sidecar = await readByLatent(
    store,
    PREFIX,
    [{ key: 'b.parquet', ...byLatent.file }],
    [1, 2],
    {},
    { positions: false }
  )
  assert.equal(sidecar.docs.length, 0)
  assert.equal(sidecar.nLatents, 100)
})
