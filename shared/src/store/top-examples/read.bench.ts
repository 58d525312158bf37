/**
 * @module Benchmark of reading top examples (a latent page reads one latent's, a diff's peaks up to its limit) from a
 * file written with hyparquet-writer's default 1 MB pages and with the writer's 16 KB pages, on the local-disk store.
 *
 * Usage: node --import tsx shared/src/store/top-examples/read.bench.ts [--latents 8192] [--per-latent 5]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { FsObjectStore } from '../fs-store.ts'
import { clearShardMetadataCache } from '../parquet/read.ts'
import { mulberry32 } from '../../util/random.ts'
import { emptyTopExampleColumns, type TopExampleColumns } from './columns.ts'
import { writeTopExamples } from './write.ts'
import { readExamplesOfLatents } from './read.ts'

const { values } = parseArgs({
  options: { latents: { type: 'string', default: '8192' }, 'per-latent': { type: 'string', default: '5' } }
})
const nLatents = Number(values.latents)
const perLatent = Number(values['per-latent'])
const WORDS = ' the of and to a in is it you that for on was with as have be at or this'.split(' ').slice(1)

const rand = mulberry32(1)
const c: TopExampleColumns = emptyTopExampleColumns()
for (let l = 0; l < nLatents; l++) {
  for (let r = 0; r < perLatent; r++) {
    const tokens = Array.from({ length: 25 }, () => ` ${WORDS[Math.floor(rand() * WORDS.length)]}`)
    c.latent.push(l)
    c.rank.push(r)
    c.doc.push(Math.floor(rand() * 100_000))
    c.value.push(10 - r)
    c.position.push(200)
    c.windowStart.push(188)
    c.tokens.push(JSON.stringify(tokens))
    c.activations.push(JSON.stringify(tokens.map(() => Math.round(rand() * 1e4) / 1e4)))
  }
}
/** The same rows as hyparquet-writer writes them by default (pages of 1 MB), as files written before 16 KB pages. */
function withDefaultPages(x: TopExampleColumns): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'latent', data: Int32Array.from(x.latent), type: 'INT32' },
        { name: 'rank', data: Int32Array.from(x.rank), type: 'INT32' },
        { name: 'doc', data: Int32Array.from(x.doc), type: 'INT32' },
        { name: 'value', data: Float32Array.from(x.value), type: 'FLOAT' },
        { name: 'position', data: Int32Array.from(x.position), type: 'INT32' },
        { name: 'window_start', data: Int32Array.from(x.windowStart), type: 'INT32' },
        { name: 'tokens', data: x.tokens, type: 'JSON' },
        { name: 'activations', data: x.activations, type: 'JSON' }
      ]
    })
  )
}

const dir = await mkdtemp(join(tmpdir(), 'latentbase-examples-bench-'))
try {
  const store = new FsObjectStore(dir)
  const pick = (n: number, seed: number) => {
    const r = mulberry32(seed)
    return Array.from({ length: n }, () => Math.floor(r() * nLatents))
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]
  console.log(`${nLatents} latents x ${perLatent} examples, windows of 25 tokens; median ms on the local-disk store`)
  for (const [name, bytes] of [
    ['1 MB pages (before)', withDefaultPages(c)],
    ['16 KB pages (writeTopExamples)', writeTopExamples(c)]
  ] as const) {
    await store.put(name, bytes)
    clearShardMetadataCache()
    let t = performance.now()
    await readExamplesOfLatents(store, name, pick(1, 99))
    const first = performance.now() - t
    const row: string[] = [`first read ${first.toFixed(1)}`]
    for (const n of [1, 6, 50, 200]) {
      const times: number[] = []
      for (let i = 0; i < (n === 1 ? 21 : 7); i++) {
        t = performance.now()
        await readExamplesOfLatents(store, name, pick(n, i + 1))
        times.push(performance.now() - t)
      }
      row.push(`${n} latent${n > 1 ? 's' : ''} ${median(times).toFixed(1)}`)
    }
    console.log(`${name}: ${(bytes.length / 1e6).toFixed(2)} MB; ${row.join(', ')}`)
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}
