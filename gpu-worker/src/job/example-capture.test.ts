/**
 * @module Top examples captured in the encode pass show what the second pass (re-encoding the candidate documents)
 * shows: same documents, ranks, windows and tokens, same activations within float tolerance; across parts, chunks,
 * tied duplicates, long documents read in several windows and mean pooling; and a part without capture falls back.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parquetReadObjects } from 'hyparquet'
import type { DatasetRecord, PoolingSpec } from '@latentbase/shared/contract/dataset'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset, encodePart, finalizeEncode, planEncode } from './encode.ts'
import { mineTopExamples } from './top-examples.ts'

let encoder: LoadedEncoder
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
})
after(async () => {
  await encoder.close()
})

const PHRASES = [
  'the tide came in over the flats and the birds lifted',
  'invoice 4471 is overdue, please remit payment today',
  'Call me Ishmael. Some years ago, never mind how long precisely',
  'def main(): return [x * 2 for x in range(10)]'
]
// Varied lengths; every 7th document repeats an earlier one word for word (tied pooled values in other parts).
const docs = Array.from({ length: 30 }, (_, i) => {
  const j = i % 7 === 6 ? i - 5 : i
  return {
    id: `d${i}`,
    text: `Note ${j % 5}: ${`${PHRASES[j % 4]}. `.repeat(1 + (j % 5))}${PHRASES[(j + 1) % 4]}.`,
    metadata: {}
  }
})

async function encodeFixture(pooling: PoolingSpec, enc: LoadedEncoder, log: string[]) {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const record: DatasetRecord = {
    id: 'ds_x',
    tenant: 'local',
    name: 'x',
    status: 'running',
    encoder: 'demo',
    pooling,
    source: { inline: docs.length },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(layout.inlineInput('local', 'ds_x'), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  return {
    objects,
    datasets,
    record,
    opts: {
      objects,
      datasets,
      encoder: enc,
      allowLocalSources: false,
      partDocuments: 11,
      chunkDocuments: 4,
      topExamplesPerLatent: 3,
      progressIntervalMs: 0,
      log: (l: string) => {
        log.push(l)
      }
    }
  }
}

type Row = Record<string, unknown>
const readRows = async (bytes: Uint8Array): Promise<Row[]> =>
  parquetReadObjects({ file: bytes.slice().buffer as ArrayBuffer })
const asArray = (v: unknown): unknown[] => (typeof v === 'string' ? JSON.parse(v) : v) as unknown[]

/** The captured file against the second pass over the same store: same rows, same windows, values within tolerance. */
async function assertSameAsSecondPass(
  objects: MemoryObjectStore,
  manifest: {
    topExamples?: { key: string }
    stats: { key: string }
    documents: { files: Parameters<typeof mineTopExamples>[0]['documentFiles'] }
  },
  enc: LoadedEncoder,
  label: string
) {
  const prefix = layout.datasetPrefix('local', 'ds_x')
  const captured = await readRows((await objects.get(prefix + manifest.topExamples!.key))!)
  const stats = await readLatentStats(objects, prefix + manifest.stats.key)
  const mined = await readRows(
    await mineTopExamples({
      objects,
      prefix,
      encoder: enc,
      stats,
      documentFiles: manifest.documents.files,
      perLatent: 3,
      poolRoles: ['assistant']
    })
  )
  assert.ok(captured.length > 100, `${label}: ${captured.length} examples: enough to mean something`)
  assert.equal(captured.length, mined.length, `${label}: as many examples as the second pass`)
  let windows = 0
  for (let i = 0; i < mined.length; i++) {
    const [c, m] = [captured[i], mined[i]]
    const at = `${label}: latent ${m.latent} rank ${m.rank}`
    for (const k of ['latent', 'rank', 'doc', 'position', 'window_start']) assert.equal(c[k], m[k], `${at}: ${k}`)
    assert.deepEqual(asArray(c.tokens), asArray(m.tokens), `${at}: tokens`)
    const scale = Math.max(1, Number(m.value))
    assert.ok(Math.abs(Number(c.value) - Number(m.value)) <= 1e-4 * scale, `${at}: value ${c.value} vs ${m.value}`)
    const [ca, ma] = [asArray(c.activations) as number[], asArray(m.activations) as number[]]
    assert.equal(ca.length, ma.length, `${at}: window length`)
    for (let t = 0; t < ma.length; t++)
      assert.ok(Math.abs(ca[t] - ma[t]) <= 2e-4 * scale, `${at}: activation ${t}: ${ca[t]} vs ${ma[t]}`)
    if (Number(m.window_start) > 0) windows++
  }
  return { rows: captured.length, windows, docs: new Set(captured.map(r => Number(r.doc))) }
}

test('captured top examples equal the second pass: max pooling over parts and chunks, with tied duplicates', async () => {
  const log: string[] = []
  const { record, objects, opts } = await encodeFixture({ method: 'max', outlierNormRatio: 100 }, encoder, log)
  const { manifest } = await encodeDataset(record, opts)
  assert.equal(manifest.documents.files.length, 3, 'three parts')
  assert.ok(
    log.some(l => /merged \d+ captured examples of 3 part/.test(l)),
    log.join('\n')
  )
  assert.ok(!log.some(l => /second pass|re-encoded/.test(l)), 'no document was read twice')
  const { docs: shown } = await assertSameAsSecondPass(objects, manifest, encoder, 'max')
  // The duplicates tie with their originals, which have the lower rows: the lower row is shown.
  for (let i = 6; i < docs.length; i += 7)
    assert.ok(shown.has(i - 5) || !shown.has(i), `duplicate ${i} shown without its original ${i - 5}`)
})

test('captured top examples equal the second pass: long documents read in several windows, and mean pooling', async () => {
  // Windows of 12 tokens: most documents are read in several windows, whose pooled values merge after the chunk.
  const windowed = {
    ...encoder,
    prepareContext: { ...encoder.prepareContext, maxTokens: 12, longDocuments: 'window' as const }
  }
  const log: string[] = []
  const a = await encodeFixture({ method: 'max', outlierNormRatio: 100 }, windowed, log)
  const { manifest } = await encodeDataset(a.record, a.opts)
  assert.ok(
    log.some(l => /merged \d+ captured examples/.test(l)),
    log.join('\n')
  )
  const { windows } = await assertSameAsSecondPass(a.objects, manifest, windowed, 'windows')
  assert.ok(windows > 20, `${windows} examples come from a later window of their document`)
  const b = await encodeFixture({ method: 'mean', outlierNormRatio: 100 }, encoder, [])
  const mean = await encodeDataset(b.record, b.opts)
  await assertSameAsSecondPass(b.objects, mean.manifest, encoder, 'mean')
})

test('a part without captured examples (an older worker) makes finalize mine them, with the same result', async () => {
  const log: string[] = []
  const { record, objects, opts } = await encodeFixture({ method: 'max', outlierNormRatio: 100 }, encoder, log)
  const plan = await planEncode(record, opts)
  for (let p = 0; p < plan.parts.length; p++) await encodePart(record, plan, p, opts)
  const prefix = layout.datasetPrefix('local', 'ds_x')
  await objects.delete(prefix + layout.partExamples(1))
  const { manifest } = await finalizeEncode(record, plan, opts)
  assert.ok(
    log.some(l => /part 1 has no captured examples/.test(l)),
    log.join('\n')
  )
  assert.ok(log.some(l => /re-encoded \d+ candidate documents/.test(l)))
  await assertSameAsSecondPass(objects, manifest, encoder, 'fallback')
})
