/**
 * @module Benchmark of BM25 over e-mail-sized documents (SpamAssassin, repeated to --docs): indexing every text in
 * memory, as a search does without sidecars (again for every query once the index passes the 48 MB cache), against
 * the documents shards' BM25 sidecars (the query terms' postings only), on the local-disk store.
 *
 * Usage: node --import tsx shared/src/store/documents/bm25-sidecar.bench.ts [--docs 30000] [--shard-docs 5000]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import type { ShardFile } from '../../contract/manifest.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { Bm25IndexBuilder, bm25Scores } from '../../analysis/bm25.ts'
import { FsObjectStore } from '../fs-store.ts'
import { readDocuments } from './read.ts'
import { writeDocumentsShard } from './write.ts'
import { bm25SidecarKey, openBm25Sidecar, sidecarBm25Scores } from './bm25-sidecar.ts'

const { values } = parseArgs({
  options: { docs: { type: 'string', default: '30000' }, 'shard-docs': { type: 'string', default: '5000' } }
})
const nDocs = Number(values.docs)
const shardDocs = Number(values['shard-docs'])
const emails = loadSpamAssassin().map(e => e.text)
const QUERIES = [
  'click here to unsubscribe',
  'linux kernel patch',
  'meeting tomorrow afternoon',
  'free money offer',
  'mortgage rates lowest',
  'perl script error',
  'python module import',
  'weekend party invitation',
  'credit card debt',
  'server configuration file',
  'vacation photos attached',
  'stock market investment'
]

const dir = await mkdtemp(join(tmpdir(), 'latentbase-bm25-bench-'))
try {
  const store = new FsObjectStore(dir)
  const files: ShardFile[] = []
  let sidecarBytes = 0
  let textBytes = 0
  for (let start = 0; start < nDocs; start += shardDocs) {
    const n = Math.min(shardDocs, nDocs - start)
    const text = Array.from({ length: n }, (_, i) => emails[(start + i) % emails.length])
    const shard = writeDocumentsShard(
      {
        row: Int32Array.from({ length: n }, (_, i) => start + i),
        id: text.map((_, i) => `d${start + i}`),
        text,
        metadata: text.map(() => '{}'),
        token_count: text.map(t => t.length >> 2),
        truncated: text.map(() => 0),
        masked_tokens: text.map(() => 0)
      },
      { bm25: true }
    )
    const key = `documents/part-${String(files.length).padStart(5, '0')}.parquet`
    await store.put(key, shard.bytes)
    await store.put(bm25SidecarKey(key), shard.bm25!)
    files.push({ key, ...shard.file })
    sidecarBytes += shard.bm25!.length
    textBytes += shard.bytes.length
  }
  console.log(
    `${nDocs} e-mails in ${files.length} shards: documents ${(textBytes / 1e6).toFixed(1)} MB, BM25 sidecars ${(sidecarBytes / 1e6).toFixed(1)} MB`
  )

  // Without sidecars: every text read and indexed (search-service's bm25Index), then scored.
  let t = performance.now()
  const builder = new Bm25IndexBuilder()
  for (const f of files)
    for (const g of f.rowGroups) {
      const docs = await readDocuments(store, '', [f], { start: g.first, end: g.last + 1 }, ['text'])
      for (let i = 0; i < docs.row.length; i++) builder.add(docs.row[i], docs.text[i])
    }
  const index = builder.build(nDocs)
  const built = performance.now() - t
  t = performance.now()
  const fromIndex = QUERIES.map(q => bm25Scores(index, q))
  const scored = (performance.now() - t) / QUERIES.length
  console.log(
    `texts indexed in memory: ${(built / 1000).toFixed(1)} s to read and index (${(index.bytes / 1e6).toFixed(0)} MB: ${index.bytes > 48 << 20 ? 'over' : 'within'} the 48 MB cache, ${index.bytes > 48 << 20 ? 'so paid by every query' : 'paid once per process'}), then ${scored.toFixed(1)} ms a query`
  )

  // With sidecars: the heads once per process, then each query's terms' postings.
  t = performance.now()
  const sidecars = await Promise.all(files.map(f => openBm25Sidecar(store, bm25SidecarKey(f.key), f.bm25Bytes!)))
  await sidecarBm25Scores(store, sidecars, nDocs, QUERIES[0])
  const firstMs = performance.now() - t
  // Queries whose terms this process has not read yet (each term's postings fetched from every shard), then the
  // same queries again (their postings cached).
  const timed = async (queries: string[]) => {
    const ms: number[] = []
    for (const q of queries) {
      t = performance.now()
      await sidecarBm25Scores(store, sidecars, nDocs, q)
      ms.push(performance.now() - t)
    }
    return ms.sort((a, b) => a - b)
  }
  const fresh = await timed(QUERIES.slice(1))
  const again = await timed([...QUERIES, ...QUERIES])
  console.log(
    `sidecars: first query ${firstMs.toFixed(0)} ms (heads included); new terms p50 ${fresh[fresh.length >> 1].toFixed(1)} ms (max ${fresh.at(-1)!.toFixed(1)}); repeated p50 ${again[again.length >> 1].toFixed(1)} ms`
  )
  let same = true
  for (let i = 0; i < QUERIES.length; i++) {
    const s = await sidecarBm25Scores(store, sidecars, nDocs, QUERIES[i])
    same &&= s.every((x, d) => x === fromIndex[i][d])
  }
  console.log(`same scores as the in-memory index: ${same}`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
