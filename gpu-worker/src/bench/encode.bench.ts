/**
 * @module `npm run bench`: encoding throughput of the demo encoder on the ~1M-token SpamAssassin workload,
 * split into the reader's forward pass, the SAE + pooling on top of it, and everything else (tokenizing,
 * shards, statistics, top examples), measured end to end through the real encode job; and the top examples
 * captured in that pass against the second pass that re-encoded the candidate documents before (issue 13).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { loadEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { encodeDataset } from '../job/encode.ts'
import { EXAMPLE_HALF_WINDOW, mineTopExamples } from '../job/top-examples.ts'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { loadSpamAssassin } from '../corpus/spam-assassin.ts'
import { stageInlineDataset } from './stage-dataset.ts'

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

const lengths = Int32Array.from(windows, w => w.ids.length)
const batches: Array<ReturnType<typeof packBatch>> = []
for (let start = 0; start < windows.length; start += 512) {
  const cap = encoder.info.maxTokens // as the job pads: lengths rounded for the argmax's blocks
  for (const idx of planBatches(lengths.subarray(start, start + 512), {
    maxTokensPerBatch: 8192,
    maxBatchSize: 32,
    lengthCap: cap
  })) {
    batches.push(
      packBatch(
        Array.from(idx, i => windows[start + i]),
        encoder.padTokenId,
        cap
      )
    )
  }
}
const padded = batches.reduce((s, b) => s + b.batchSize * b.seqLen, 0)

async function timeSession(session: {
  run(b: ReturnType<typeof packBatch>): Promise<unknown>
  release(): Promise<void>
}): Promise<number> {
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
const record = await stageInlineDataset(objects, datasets, { id: 'ds_bench', encoder: 'demo', docs })
t = performance.now()
const { stats, manifest } = await encodeDataset(record, { objects, datasets, encoder, allowLocalSources: false })
const endToEnd = (performance.now() - t) / 1000

// Before issue 13 top examples were a second pass: re-encode each latent's top documents token by token. Timed on
// the same store, and the same fused graph with the capture outputs, fed the final lists' entry bars (steady state).
const prefix = layout.datasetPrefix('local', 'ds_bench')
const latentStats = await readLatentStats(objects, prefix + manifest.stats.key)
const perLatent = manifest.topExamples?.perLatent ?? 5
t = performance.now()
await mineTopExamples({
  objects,
  prefix,
  encoder,
  stats: latentStats,
  documentFiles: manifest.documents.files,
  perLatent,
  poolRoles: ['assistant']
})
const secondPass = (performance.now() - t) / 1000
const bar = Float32Array.from(
  { length: encoder.info.dSae },
  (_, s) => latentStats.topValues[s * latentStats.topK + perLatent - 1]
)
// Interleaved batch by batch, so that a loaded machine slows both alike.
const plainSession = await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
const captureSession = await encoder.createPoolingSession(
  { method: 'max', outlierNormRatio: 100 },
  { examples: { halfWindow: EXAMPLE_HALF_WINDOW } }
)
await plainSession.run(batches[0])
await captureSession.run({ ...batches[0], exampleThreshold: bar })
let plainFused = 0
let fusedCaptureSeconds = 0
for (const b of batches) {
  let t0 = performance.now()
  await plainSession.run(b)
  plainFused += (performance.now() - t0) / 1000
  t0 = performance.now()
  await captureSession.run({ ...b, exampleThreshold: bar })
  fusedCaptureSeconds += (performance.now() - t0) / 1000
}
await plainSession.release()
await captureSession.release()
await rm(dir, { recursive: true, force: true })

const rate = (s: number) => `${Math.round(tokens / s).toLocaleString('en-US')} tokens/s`
const row = (name: string, s: number, note = '') =>
  console.log(`${name.padEnd(42)} ${s.toFixed(1).padStart(7)} s  ${rate(s).padStart(18)}  ${note}`)
console.log(
  `workload: ${docs.length} SpamAssassin messages, ${tokens.toLocaleString('en-US')} tokens (${windows.length} windows, ${(100 * (1 - tokens / padded)).toFixed(1)}% padding), encoder demo (${encoder.info.dSae} latents), ${encoder.info.maxTokens} max tokens`
)
row('tokenize (Llama 2 tokenizer, 1 core)', tokenizeSeconds)
row('reader forward pass only (layers 0-1)', readerSeconds)
row(
  'fused reader + SAE + masked max pooling',
  fusedSeconds,
  `SAE + pooling add ${(fusedSeconds - readerSeconds).toFixed(1)} s`
)
row(
  'encode job end to end',
  endToEnd,
  Object.entries(stats.seconds ?? {})
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${(v ?? 0).toFixed(1)} s`)
    .join(', ')
)
const s = stats.seconds ?? {}
row('fused graph, again (interleaved with the next)', plainFused)
row(
  'fused graph + top-example capture outputs',
  fusedCaptureSeconds,
  `capture outputs add ${(fusedCaptureSeconds - plainFused).toFixed(1)} s over the fused graph`
)
row(
  'top examples by a second pass (before)',
  secondPass,
  `re-encoding the candidates: ${((100 * secondPass) / (s.encode ?? NaN)).toFixed(0)}% of the job's encode step`
)
console.log(
  `top examples captured in the encode pass: ${(s.topExamples ?? 0).toFixed(2)} s on the host (${((100 * (s.topExamples ?? 0)) / (s.encode ?? NaN)).toFixed(1)}% of the encode step) + ${(fusedCaptureSeconds - plainFused).toFixed(1)} s in the graph (${((100 * (fusedCaptureSeconds - plainFused)) / plainFused).toFixed(1)}% of the fused pass)`
)
console.log(
  `reader forward pass: ${((100 * readerSeconds) / endToEnd).toFixed(0)}% of the end-to-end time; SAE + pooling ${((100 * (fusedSeconds - readerSeconds)) / endToEnd).toFixed(0)}%; everything else ${((100 * (endToEnd - fusedSeconds)) / endToEnd).toFixed(0)}%`
)
