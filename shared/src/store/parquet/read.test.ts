/** @module Tests of the shared Parquet column reader: page-narrowed string reads decode only the rows asked for; the slices of a read holding wanted keys. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '../memory-store.ts'
import { writeTable, int32Column } from './write.ts'
import { openShard, readColumns, wantedSlices } from './read.ts'

test('a few rows of a string column come back exact, and only those rows are decoded from their pages', async () => {
  const n = 5000
  const ids = Array.from({ length: n }, (_, i) => `doc-${i}${i % 7 === 0 ? '-é✓' : ''}`)
  const texts = Array.from({ length: n }, (_, i) => (i % 11 === 0 ? '' : `text ${i} `.repeat(1 + (i % 5))))
  const bytes = writeTable(
    [
      int32Column(
        'row',
        Int32Array.from({ length: n }, (_, i) => i),
        true
      ),
      { name: 'id', data: ids, type: 'STRING', nullable: false },
      { name: 'text', data: texts, type: 'STRING', nullable: false }
    ],
    [2000, 3000],
    {},
    4096
  )
  const store = new MemoryObjectStore()
  await store.put('t/part.parquet', bytes)
  const shard = await openShard(store, 't/', { key: 'part.parquet', rows: n, bytes: bytes.length, rowGroups: [] })
  const decode = TextDecoder.prototype.decode
  let decoded = 0
  TextDecoder.prototype.decode = function (this: TextDecoder, ...args: Parameters<TextDecoder['decode']>) {
    decoded++
    return decode.apply(this, args)
  }
  try {
    for (const [lo, hi] of [
      [1999, 2001],
      [0, 1],
      [4997, 5000],
      [700, 707]
    ]) {
      decoded = 0
      const out = await readColumns(shard, { id: 'str', text: 'str' }, lo, hi, true)
      assert.deepEqual(out.id, ids.slice(lo, hi))
      assert.deepEqual(out.text, texts.slice(lo, hi))
      assert.equal(
        decoded,
        2 * (hi - lo),
        `rows ${lo}-${hi}: one decode per value kept, none for the rest of each page`
      )
    }
  } finally {
    TextDecoder.prototype.decode = decode
  }
  const all = await readColumns(shard, { id: 'str' }, 0, n)
  assert.deepEqual(all.id, ids, 'a whole read, across row groups')
})

test('wantedSlices: the runs of a sorted key column holding wanted keys, from wanted keys before, inside and after it', () => {
  const keys = Int32Array.from([3, 3, 5, 8, 8, 8, 9, 12])
  const want = Int32Array.from([0, 1, 3, 4, 8, 9, 10, 12, 13, 20])
  assert.deepEqual(wantedSlices(keys, want), [
    [0, 2],
    [3, 6],
    [6, 7],
    [7, 8]
  ])
  assert.deepEqual(wantedSlices(keys, Int32Array.from([1, 2, 13])), [])
  assert.deepEqual(wantedSlices(new Int32Array(0), want), [])
  assert.deepEqual(wantedSlices(keys, { start: 4, end: 9 }), [[2, 6]])
  // Many short reads of one long wanted list (scattered rows): each read sees only its own keys.
  const rows = Int32Array.from({ length: 20000 }, (_, i) => i * 7)
  let found = 0
  for (let s = 0; s < 140000; s += 70) {
    const span = Int32Array.from({ length: 70 }, (_, i) => s + i)
    for (const [lo, hi] of wantedSlices(span, rows)) found += hi - lo
  }
  assert.equal(found, rows.length)
})
