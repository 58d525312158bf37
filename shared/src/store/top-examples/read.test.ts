/** @module Tests of the top-examples file as the worker writes it (small pages with offset indexes) read back for sets of latents. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parquetMetadata } from 'hyparquet'
import { MemoryObjectStore } from '../memory-store.ts'
import { mulberry32 } from '../../util/random.ts'
import { emptyTopExampleColumns } from './columns.ts'
import { writeTopExamples } from './write.ts'
import { readExamplesOfLatents, readLatentExamples } from './read.ts'

/** Latents 0, 3, 6, ... with 1-5 examples each, windows of 25 tokens; rows pushed in shuffled order (the writer sorts). */
function examples(nLatents: number, seed: number) {
  const rand = mulberry32(seed)
  const c = emptyTopExampleColumns()
  for (let l = 0; l < nLatents * 3; l += 3) {
    const n = 1 + Math.floor(rand() * 5)
    for (let r = 0; r < n; r++) {
      const tokens = Array.from({ length: 25 }, (_, i) => ` w${l}.${r}.${i}`)
      c.latent.push(l)
      c.rank.push(r)
      c.doc.push(Math.floor(rand() * 10_000))
      c.value.push(10 - r)
      c.position.push(100 + r)
      c.windowStart.push(88 + r)
      c.tokens.push(JSON.stringify(tokens))
      c.activations.push(JSON.stringify(tokens.map((_, i) => (i === 12 ? 10 - r : 0))))
    }
  }
  return c
}

test('a written file has small pages with offset indexes, and any set of latents reads back exactly its rows', async () => {
  const c = examples(1200, 7)
  const bytes = writeTopExamples(c)
  const metadata = parquetMetadata(bytes.buffer as ArrayBuffer)
  const tokens = metadata.row_groups.flatMap(g => g.columns.filter(x => x.meta_data?.path_in_schema[0] === 'tokens'))
  assert.ok(
    tokens.some(x => x.offset_index_offset !== undefined),
    'the tokens column spans several pages and has an offset index'
  )
  const store = new MemoryObjectStore()
  await store.put('e.parquet', bytes)
  const expected = (latent: number, limit = Infinity) => {
    const at = c.latent.flatMap((l, i) => (l === latent ? [i] : [])).sort((x, y) => c.rank[x] - c.rank[y])
    return at.slice(0, limit)
  }
  const rand = mulberry32(3)
  for (const size of [1, 2, 7, 60, 400]) {
    // Adjacent latents, latents with no examples (not multiples of 3), the first and the last.
    const wanted = Array.from({ length: size }, () => Math.floor(rand() * 3600))
    if (size > 2) wanted.push(0, 3597, 3, 6, 9)
    const limit = size === 7 ? 2 : Infinity
    const got = await readExamplesOfLatents(store, 'e.parquet', wanted, limit)
    const withRows = [...new Set(wanted)].filter(l => expected(l).length).sort((x, y) => x - y)
    assert.deepEqual([...got.keys()], withRows, `size ${size}: the latents that have examples, ascending`)
    for (const l of withRows) {
      const rows = expected(l, limit)
      const ex = got.get(l)!
      assert.deepEqual(
        Array.from(ex.doc),
        rows.map(i => c.doc[i]),
        `latent ${l}`
      )
      assert.deepEqual(
        Array.from(ex.rank),
        rows.map(i => c.rank[i])
      )
      assert.deepEqual(
        Array.from(ex.windowStart),
        rows.map(i => c.windowStart[i])
      )
      assert.deepEqual(
        ex.tokens,
        rows.map(i => JSON.parse(c.tokens[i]))
      )
      assert.deepEqual(
        ex.activations,
        rows.map(i => JSON.parse(c.activations[i]))
      )
    }
  }
  assert.deepEqual((await readLatentExamples(store, 'e.parquet', 3597)).rank.length, expected(3597).length)
})
