/** @module Tests of the documents shards' BM25 sidecars: the scores of an index over every text, from the query terms' postings only. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '../memory-store.ts'
import { mulberry32 } from '../../util/random.ts'
import { buildBm25Index, bm25Scores } from '../../analysis/bm25.ts'
import { bm25SidecarKey, openBm25Sidecar, readPostings, sidecarBm25Scores, writeBm25Sidecar } from './bm25-sidecar.ts'

const WORDS = 'river stone quiet market lantern harbor copper meadow signal winter ledger orchard velvet'.split(' ')

/** 300 texts over ~2,000 distinct terms (many dictionary blocks), some empty, some non-Latin, some long words (one of 70,000 letters). */
function texts(): string[] {
  const rand = mulberry32(5)
  return Array.from({ length: 300 }, (_, i) => {
    if (i % 37 === 0) return ''
    const words = Array.from({ length: 5 + Math.floor(rand() * 40) }, () =>
      rand() < 0.5 ? WORDS[Math.floor(rand() * WORDS.length)] : `w${Math.floor(rand() * 2000)}`
    )
    if (i % 11 === 0) words.push('Straße', 'mañana', '東京', 'aaaa'.repeat(20), 'b'.repeat(70_000))
    return words.join(rand() < 0.5 ? ' ' : ', ')
  })
}

test('sidecars of three shards give exactly the scores of one index over every text, and the same postings', async () => {
  const all = texts()
  const store = new MemoryObjectStore()
  // Shards of rows [0, 100), [100, 220) and [220, 300), as parts write them.
  const bounds = [0, 100, 220, 300]
  const sidecars = []
  for (let s = 0; s < 3; s++) {
    const rows = Int32Array.from({ length: bounds[s + 1] - bounds[s] }, (_, i) => bounds[s] + i)
    const bytes = writeBm25Sidecar(rows, all.slice(bounds[s], bounds[s + 1]))
    const key = bm25SidecarKey(`documents/part-0000${s}.parquet`)
    await store.put(key, bytes)
    sidecars.push(await openBm25Sidecar(store, key, bytes.length))
  }
  assert.equal(
    bm25SidecarKey('versions/00002/documents/part-00001.parquet'),
    'versions/00002/documents/part-00001.bm25'
  )
  assert.ok(sidecars[0].firstTerms.length > 5, 'several dictionary blocks')
  const index = buildBm25Index(all)
  const first = [...index.terms.keys()].sort()[0]
  const last = [...index.terms.keys()].sort().at(-1)!
  for (const query of [
    'river',
    'Copper, meadow! copper',
    'w17 w1999 w5',
    `${first} ${last}`,
    'straße 東京 mañana',
    'aaaa'.repeat(20),
    `${'b'.repeat(70_000)} river`,
    'absent words only',
    '0',
    ''
  ]) {
    const stored = await sidecarBm25Scores(store, sidecars, all.length, query)
    assert.deepEqual(stored, bm25Scores(index, query), query)
  }
  // Over a slice: the scores of an index of the slice's texts alone (its frequencies and mean length), at its rows.
  const slice = Int32Array.from({ length: all.length }, (_, i) => i).filter(i => i % 3 !== 1 && i < 260)
  const sliceIndex = buildBm25Index(Array.from(slice, r => all[r]))
  for (const query of ['river copper', 'w17 w1999 w5', 'straße', 'absent']) {
    const expected = new Float32Array(all.length)
    bm25Scores(sliceIndex, query).forEach((x, i) => {
      expected[slice[i]] = x
    })
    assert.deepEqual(await sidecarBm25Scores(store, sidecars, all.length, query, slice), expected, `slice: ${query}`)
  }
  assert.deepEqual(
    await sidecarBm25Scores(store, sidecars, all.length, 'river', new Int32Array(0)),
    new Float32Array(300)
  )
  // A term's postings, shard by shard, are the whole index's restricted to the shard.
  const t = index.terms.get('harbor')!
  const whole = Array.from(index.docs.subarray(index.termPtr[t], index.termPtr[t + 1]))
  const got: number[] = []
  for (const s of sidecars) {
    const p = await readPostings(store, s, 'harbor')
    for (const d of p?.docs ?? []) got.push(s.rows[d])
  }
  assert.deepEqual(got, whole)
  assert.equal(await readPostings(store, sidecars[0], '!'), null, 'before the first term')
  assert.equal(await readPostings(store, sidecars[0], 'zzzz'), null, 'after the last term')
})

test('a small dictionary comes with the head, a large one is read block by block: the same scores', async () => {
  const store = new MemoryObjectStore()
  // 2,000 documents of 20 random 9-letter terms each: ~40,000 terms, a dictionary past the 128 KB kept with the head.
  const rand = mulberry32(9)
  const word = () => Array.from({ length: 9 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('')
  const big = Array.from({ length: 2000 }, (_, i) =>
    [...Array.from({ length: 20 }, word), WORDS[i % WORDS.length]].join(' ')
  )
  const some = big[7].split(' ')
  const small = big.slice(0, 20)
  for (const [name, list] of [
    ['big', big],
    ['small', small]
  ] as const) {
    const bytes = writeBm25Sidecar(
      Int32Array.from(list, (_, i) => i),
      list
    )
    await store.put(name, bytes)
    const sidecar = await openBm25Sidecar(store, name, bytes.length)
    assert.equal(sidecar.dictionary === undefined, name === 'big', `${name}: dictionary kept with the head`)
    const index = buildBm25Index(list)
    for (const query of [`${some[3]} river`, `${some[0]} ${some[19]}`, `${WORDS[3]} ${some[5]}`, 'nothing'])
      assert.deepEqual(await sidecarBm25Scores(store, [sidecar], list.length, query), bm25Scores(index, query), query)
  }
})

test('a file that is not a sidecar, or is cut short, is refused', async () => {
  const store = new MemoryObjectStore()
  await store.put('x.bm25', new Uint8Array(64))
  await assert.rejects(openBm25Sidecar(store, 'x.bm25', 64), /bad magic/)
  const bytes = writeBm25Sidecar(Int32Array.from([0, 1]), ['one two', 'two three'])
  await store.put('cut.bm25', bytes.subarray(0, 40))
  await assert.rejects(openBm25Sidecar(store, 'cut.bm25', 40), /truncated|missing/)
})
