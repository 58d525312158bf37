/** @module The plan step's document limit: the first maxDocuments (reading stops there), or a seeded uniform sample. */
import { test, before, after } from 'node:test'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parquetWriteBuffer } from 'hyparquet-writer'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SourceSpec, type DatasetRecord } from '@latentbase/shared/contract/dataset'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { planEncode } from './plan.ts'
import { PermanentJobError } from './encode-options.ts'

let encoder: LoadedEncoder
let dir: string
let sorted: string
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  dir = await mkdtemp(join(tmpdir(), 'latentbase-plan-'))
  // Sorted by label, as many published datasets are: the first half all "neg", then all "pos"; a broken line at the end.
  const lines = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({ id: `d${i}`, text: `review number ${i} of the film`, label: i < 30 ? 'neg' : 'pos' })
  )
  sorted = join(dir, 'sorted.jsonl')
  await writeFile(sorted, `${lines.join('\n')}\n{not json\n`)
})
after(() => rm(dir, { recursive: true, force: true }))

async function plan(source: Partial<SourceSpec>, id = 'ds_plan') {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const record: DatasetRecord = {
    id,
    tenant: 'local',
    name: id,
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: SourceSpec.parse({ url: sorted, idField: 'id', metadataFields: ['label'], ...source }),
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: null }, tokens: 0 },
    attempts: 1
  }
  await datasets.putRecord(record)
  const lines: string[] = []
  const result = await planEncode(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: true,
    partDocuments: 7,
    log: line => lines.push(line)
  })
  const docs: Array<{ id: string; metadata: { label: string | number } }> = []
  for (let p = 0; p < result.parts.length; p++) {
    const bytes = await objects.get(layout.datasetPrefix('local', id) + layout.partInput(p))
    for (const line of new TextDecoder().decode(bytes!).split('\n')) if (line) docs.push(JSON.parse(line))
  }
  return { result, docs, ids: docs.map(d => d.id), lines }
}

test('without a limit every document is planned (and the broken line skipped)', async () => {
  const { result, ids } = await plan({})
  assert.equal(result.documents, 60)
  assert.equal(ids.length, 60)
  assert.deepEqual(result.skipped, { 'invalid-json': 1 })
})

test('maxDocuments alone: the first ones, and the source is not read past them', async () => {
  const { result, ids, docs } = await plan({ maxDocuments: 10 })
  assert.deepEqual(
    ids,
    Array.from({ length: 10 }, (_, i) => `d${i}`)
  )
  assert.equal(result.documents, 10)
  assert.ok(
    docs.every(d => d.metadata.label === 'neg'),
    'the first ten of a sorted source are all of one label'
  )
  assert.deepEqual(result.skipped, {}, 'the broken line at the end was never read')
  // Rows stay contiguous over parts of partDocuments.
  assert.deepEqual(
    result.parts.map(p => [p.docStart, p.docCount]),
    [
      [0, 7],
      [7, 3]
    ]
  )
})

test('maxDocuments with sampleSeed: a uniform sample of the whole source, in source order, the same for the same seed', async () => {
  const a = await plan({ maxDocuments: 20, sampleSeed: 7 })
  const again = await plan({ maxDocuments: 20, sampleSeed: 7 })
  const other = await plan({ maxDocuments: 20, sampleSeed: 8 })
  assert.equal(a.result.documents, 20)
  assert.deepEqual(a.ids, again.ids)
  assert.notDeepEqual(a.ids, other.ids)
  const rows = a.ids.map(id => Number(id.slice(1)))
  assert.deepEqual(
    rows,
    [...rows].sort((x, y) => x - y),
    'kept in source order'
  )
  assert.equal(new Set(rows).size, 20)
  const pos = a.docs.filter(d => d.metadata.label === 'pos').length
  assert.ok(pos >= 4 && pos <= 16, `both halves of the sorted source are drawn (${pos} of 20 "pos")`)
  assert.deepEqual(a.result.skipped, { 'invalid-json': 1, 'not-sampled': 40 })
  assert.match(a.lines.join('\n'), /sampled 20 of 60 usable documents \(seed 7\)/)
  // A sample at least as large as the source keeps every document.
  assert.equal((await plan({ maxDocuments: 100, sampleSeed: 1 })).ids.length, 60)
})

test('sampleSeed without maxDocuments fails the job with the reason', async () => {
  await assert.rejects(
    plan({ sampleSeed: 3 }),
    (err: unknown) => err instanceof PermanentJobError && /give source.maxDocuments too/.test(err.message)
  )
})

test('a Hugging Face dataset through the job: the Hub named by the environment, labels as stored, the first N', async () => {
  // A ClassLabel column keeps its stored ids (0, 1), as pandas and the datasets library give them.
  const features = { text: { dtype: 'string', _type: 'Value' }, label: { names: ['neg', 'pos'], _type: 'ClassLabel' } }
  const file = new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'text', data: ['a dull film', 'a fine film', 'a great film'], type: 'STRING' },
        { name: 'label', data: [0, 1, 1], type: 'INT32' }
      ],
      kvMetadata: [{ key: 'huggingface', value: JSON.stringify({ info: { features } }) }]
    })
  )
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/parquet' && url.searchParams.get('dataset') === 'o/films') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          parquet_files: [{ dataset: 'o/films', config: 'default', split: 'train', url: `${base}/train/0000.parquet` }]
        })
      )
    } else if (url.pathname === '/train/0000.parquet') {
      res.writeHead(200)
      res.end(file)
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const saved = { endpoint: process.env.HF_ENDPOINT, viewer: process.env.LATENTBASE_HF_DATASETS_SERVER }
  process.env.HF_ENDPOINT = base
  process.env.LATENTBASE_HF_DATASETS_SERVER = base
  try {
    const { docs, lines } = await plan({ url: 'hf://datasets/o/films', idField: undefined, maxDocuments: 2 }, 'ds_hub')
    assert.deepEqual(
      docs.map(d => d.metadata.label),
      [0, 1]
    )
    assert.match(lines.join('\n'), /hf:\/\/datasets\/o\/films \(config "default", split "train"\): 1 Parquet file/)
  } finally {
    for (const [k, v] of [
      ['HF_ENDPOINT', saved.endpoint],
      ['LATENTBASE_HF_DATASETS_SERVER', saved.viewer]
    ] as const)
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    await new Promise(resolve => server.close(resolve))
  }
})
