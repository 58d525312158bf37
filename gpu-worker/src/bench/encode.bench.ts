/**
 * @module `npm run bench`: encoding throughput of the demo encoder on the ~1M-token SpamAssassin workload,
 * split into the reader's forward pass, the SAE + pooling on top of it, and everything else (tokenizing,
 * shards, statistics, top examples), measured end to end through the real encode job.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { loadEncoder } from '../encoder/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { encodeDataset } from '../job/encode.ts'
import { loadSpamAssassin } from '../corpus/spam-assassin.ts'

const targetTokens = Number(process.argv[2] ?? 1_000_000)
const encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
const context = { ...encoder.prepareContext, poolRoles: ['assistant'] }

// The workload: SpamAssassin bodies until ~targetTokens tokens (after truncation at maxTokens).
const emails = loadSpamAssassin()
const docs: Array<{ id: string; text: string; metadata: Record<string, unknown> }> = []
const windows: PreparedDocument['windows'] = []
let tokens = 0
let t = performance.now()
for (const e of emails) {
  if (tokens >= targetTokens) break
  const prep = prepareDocument({ id: e.id, text: e.text, metadata: {} }, context)
  docs.push({ id: e.id, text: e.text, metadata: { group: e.group } })
  windows.push(...prep.windows)
  tokens += prep.tokenCount
}
const tokenizeSeconds = (performance.now() - t) / 1000

const lengths = Int32Array.from(windows, (w) => w.ids.length)
const batches: Array<ReturnType<typeof packBatch>> = []
for (let start = 0; start < windows.length; start += 512) {
  for (const idx of planBatches(lengths.subarray(start, start + 512), { maxTokensPerBatch: 8192, maxBatchSize: 32 })) {
    batches.push(packBatch(Array.from(idx, (i) => windows[start + i]), encoder.padTokenId))
  }
}
const padded = batches.reduce((s, b) => s + b.batchSize * b.seqLen, 0)

async function timeSession(session: { run(b: ReturnType<typeof packBatch>): Promise<unknown>; release(): Promise<void> }): Promise<number> {
  await session.run(batches[0]) // warm-up: first run allocates
  const t0 = performance.now()
  for (const b of batches) await session.run(b)
  await session.release()
  return (performance.now() - t0) / 1000
}
const readerSeconds = await timeSession(await encoder.createReaderOnlySession())
const fusedSeconds = await timeSession(await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 }))

// End to end through the encode job and the local-disk store.
const dir = await mkdtemp(join(tmpdir(), 'latentbase-bench-'))
const objects = new FsObjectStore(dir)
const datasets = new DatasetStore(objects)
const at = new Date().toISOString()
const record: DatasetRecord = {
  id: 'ds_bench', tenant: 'local', name: 'bench', status: 'running', encoder: 'demo', pooling: { method: 'max', outlierNormRatio: 100 },
  source: { inline: docs.length }, createdAt: at, updatedAt: at, progress: { documents: { done: 0, total: docs.length }, tokens: 0 }, attempts: 1,
}
await objects.put(layout.inlineInput('local', 'ds_bench'), docs.map((d) => JSON.stringify(d)).join('\n'))
await datasets.putRecord(record)
t = performance.now()
const { stats } = await encodeDataset(record, { objects, datasets, encoder, allowLocalSources: false })
const endToEnd = (performance.now() - t) / 1000
await rm(dir, { recursive: true, force: true })

const rate = (s: number) => `${Math.round(tokens / s).toLocaleString('en-US')} tokens/s`
const row = (name: string, s: number, note = '') => console.log(`${name.padEnd(42)} ${s.toFixed(1).padStart(7)} s  ${rate(s).padStart(18)}  ${note}`)
console.log(`workload: ${docs.length} SpamAssassin messages, ${tokens.toLocaleString('en-US')} tokens (${windows.length} windows, ${(100 * (1 - tokens / padded)).toFixed(1)}% padding), encoder demo (${encoder.info.dSae} latents), ${encoder.info.maxTokens} max tokens`)
row('tokenize (Llama 2 tokenizer, 1 core)', tokenizeSeconds)
row('reader forward pass only (layers 0-1)', readerSeconds)
row('fused reader + SAE + masked max pooling', fusedSeconds, `SAE + pooling add ${(fusedSeconds - readerSeconds).toFixed(1)} s`)
row('encode job end to end', endToEnd, Object.entries(stats.seconds ?? {}).filter(([k]) => k !== 'total').map(([k, v]) => `${k} ${(v ?? 0).toFixed(1)} s`).join(', '))
console.log(`reader forward pass: ${(100 * readerSeconds / endToEnd).toFixed(0)}% of the end-to-end time; SAE + pooling ${(100 * (fusedSeconds - readerSeconds) / endToEnd).toFixed(0)}%; everything else ${(100 * (endToEnd - fusedSeconds) / endToEnd).toFixed(0)}%`)
