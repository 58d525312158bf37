/**
 * @module `npm run bench:gpt2`: encoding throughput at a real reader's size. A GPT-2-small-shaped reader (random
 * weights, cut at blocks.8.hook_resid_pre) and a 24,576-latent SAE of the gpt2-small-res-jb shape, made once by
 * gpu-worker/tools/make_gpt2_bench.py, loaded through the ordinary encoder path; tokens/s of the reader alone, of the
 * fused reader + SAE + pooling graph and of the encode job end to end (shards written), each stage's share, an
 * onnxruntime per-node profile of the fused graph (reader nodes / SAE product / the rest), and peak RSS.
 *
 *   npm run bench:gpt2 -- [--tokens 2048] [--batch-tokens 1024] [--device cpu|cuda] [--sae-dtype float32|float16|int8] [--folder DIR] [--max-tokens 256] [--layer 8]
 *
 * --layer N cuts the reader at blocks.N.hook_resid_pre (1-12; 12 = the residual stream after the last block), exported
 * into its own folder: the SAE's share of the work falls as the reader grows.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { writeLatentStats } from '@latentbase/shared/store/stats/write'
import { loadEncoder, type EncoderBatch } from '../encode/runtime.ts'
import { buildPooledGraph, SAE_DTYPES, type SaeDtype } from '../encode/fused-graph.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { encodeDataset } from '../job/encode.ts'
import { EXAMPLE_HALF_WINDOW } from '../job/top-examples.ts'
import { loadSpamAssassin } from '../corpus/spam-assassin.ts'
import { DEFAULT_GPT2_FOLDER, ensureGpt2Folder } from './gpt2-folder.ts'
import { stageInlineDataset } from './stage-dataset.ts'

const { values: args } = parseArgs({
  options: {
    tokens: { type: 'string', default: '2048' },
    device: { type: 'string', default: 'cpu' },
    'sae-dtype': { type: 'string' },
    folder: { type: 'string', default: DEFAULT_GPT2_FOLDER },
    'max-tokens': { type: 'string', default: '256' },
    'profile-batches': { type: 'string', default: '1' },
    'batch-tokens': { type: 'string', default: '1024' },
    layer: { type: 'string', default: '8' }
  }
})
if (args.device !== 'cpu' && args.device !== 'cuda') throw new Error(`--device must be cpu or cuda, got ${args.device}`)
const saeDtype = args['sae-dtype'] as SaeDtype | undefined
if (saeDtype !== undefined && !SAE_DTYPES.includes(saeDtype))
  throw new Error(`--sae-dtype must be one of ${SAE_DTYPES.join(', ')}, got ${saeDtype}`)
const targetTokens = Number(args.tokens)
const maxTokensPerBatch = Number(args['batch-tokens'])
const log = (line: string) => console.log(line)

const layer = Number(args.layer)
if (!Number.isInteger(layer) || layer < 1 || layer > 12) throw new Error(`--layer must be 1-12, got ${args.layer}`)
// Another cut is another export: the default layer keeps the default folder, others get their own beside it.
if (layer !== 8 && args.folder === DEFAULT_GPT2_FOLDER) args.folder = `${DEFAULT_GPT2_FOLDER}-layer${layer}`
const made = await ensureGpt2Folder(args.folder!, {
  maxTokens: Number(args['max-tokens']),
  log,
  ...(layer !== 8 ? { exportArgs: ['--layer', String(layer)] } : {})
})
if (made.made) log(`export: ${made.seconds.toFixed(0)} s`)
const providers = args.device === 'cuda' ? ['cuda'] : ['cpu']
let provider = 'cpu'
const encoder = await loadEncoder(args.folder!, {
  executionProviders: providers,
  ...(saeDtype ? { saeDtype } : {}),
  log: line => {
    if (/falling back|running on/.test(line)) provider = /running on (\w+)/.exec(line)?.[1] ?? provider
    if (/falling back/.test(line)) log(line)
  }
})
const rssAfterLoad = process.memoryUsage().rss

// The workload: SpamAssassin e-mails until ~targetTokens tokens (after truncation at maxTokens), batched as the job does.
const docs: Array<{ id: string; text: string; metadata: Record<string, unknown> }> = []
const windows: PreparedDocument['windows'] = []
const docTokens: number[] = []
let tokens = 0
for (const e of loadSpamAssassin()) {
  if (tokens >= targetTokens) break
  const prep = prepareDocument(
    { id: e.id, text: e.text, metadata: {} },
    { ...encoder.prepareContext, poolRoles: ['assistant'] }
  )
  if (prep.pooledTokens === 0) continue
  docs.push({ id: e.id, text: e.text, metadata: { group: e.group } })
  windows.push(...prep.windows)
  docTokens.push(prep.tokenCount)
  tokens += prep.tokenCount
}
const lengths = Int32Array.from(windows, w => w.ids.length)
// Batched and padded as the job does (lengths rounded for the argmax's blocks, never past the window).
const cap = encoder.info.maxTokens
const batches: EncoderBatch[] = planBatches(lengths, { maxTokensPerBatch, maxBatchSize: 32, lengthCap: cap }).map(idx =>
  packBatch(
    Array.from(idx, i => windows[i]),
    encoder.padTokenId,
    cap
  )
)
const padded = batches.reduce((s, b) => s + b.batchSize * b.seqLen, 0)

// Reader alone, the fused graph, and the fused graph with the top-example capture outputs the job runs (every
// latent a candidate, as in a part's first chunk), interleaved batch by batch so that a loaded machine slows all alike.
const readerSession = await encoder.createReaderOnlySession()
const pooling = { method: 'max' as const, outlierNormRatio: 100 }
const fusedSession = await encoder.createPoolingSession(pooling)
const captureSession = await encoder.createPoolingSession(pooling, { examples: { halfWindow: EXAMPLE_HALF_WINDOW } })
provider = fusedSession.provider
const withCapture = (b: EncoderBatch): EncoderBatch => ({
  ...b,
  exampleThreshold: new Float32Array(encoder.info.dSae),
  exampleAll: new Float32Array(b.batchSize)
})
await readerSession.run(batches[0])
await fusedSession.run(batches[0])
await captureSession.run(withCapture(batches[0])) // warm-up: the first run allocates
let readerSeconds = 0,
  fusedSeconds = 0,
  captureSeconds = 0
const timed = async (run: () => Promise<unknown>) => {
  const t0 = performance.now()
  await run()
  return (performance.now() - t0) / 1000
}
for (const b of batches) {
  readerSeconds += await timed(() => readerSession.run(b))
  fusedSeconds += await timed(() => fusedSession.run(b))
  captureSeconds += await timed(() => captureSession.run(withCapture(b)))
}
await readerSession.release()
await captureSession.release()

// A precision other than float32: what it changes, on the same batches, against a float32 encoder of the same folder.
let precision: string | null = null
if ((saeDtype ?? 'float32') !== 'float32' && provider === 'cpu') {
  const reference = await loadEncoder(args.folder!, { saeDtype: 'float32', log: () => {} })
  const referenceSession = await reference.createPoolingSession(pooling)
  const S = encoder.info.dSae
  let active = 0,
    agree = 0
  const errors: number[] = []
  for (const b of batches) {
    const x = (await referenceSession.run(b)).pooled
    const y = (await fusedSession.run(b)).pooled
    for (let s = 0; s < S; s++) {
      let max = 0
      for (let r = 0; r < b.batchSize; r++) max = Math.max(max, x[r * S + s])
      for (let r = 0; r < b.batchSize; r++) {
        const i = r * S + s
        if (!(x[i] > 0 || y[i] > 0)) continue
        active++
        if (x[i] > 0 && y[i] > 0) {
          agree++
          errors.push(Math.abs(x[i] - y[i]) / max)
        }
      }
    }
  }
  await referenceSession.release()
  await reference.close()
  errors.sort((a, b) => a - b)
  const q = (p: number) => errors[Math.min(errors.length - 1, Math.floor(p * errors.length))]?.toExponential(1)
  precision = `${saeDtype} against float32 (max pooling, these batches): active (row, latent) pairs in both ${((100 * agree) / active).toFixed(2)}% of ${active.toLocaleString('en-US')}; pooled value error / the latent's batch max: median ${q(0.5)}, p99 ${q(0.99)}, worst ${q(1)}`
}
await fusedSession.release()

// The encode job end to end on the local-disk store: tokenizing, the fused graph with top-example capture, shards,
// statistics. Run on the first half of the documents, then on all: what a part pays once (the statistics and example
// files of every latent, opening the session) cancels in the difference, which is what each further token costs.
interface JobRun {
  seconds: Record<string, number | undefined>
  total: number
  activePerDocument: number
  statsWrite: number
}
async function runJob(subset: typeof docs): Promise<JobRun> {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-bench-gpt2-'))
  try {
    const objects = new FsObjectStore(dir)
    const datasets = new DatasetStore(objects)
    const record = await stageInlineDataset(objects, datasets, {
      id: 'ds_bench',
      encoder: encoder.info.id,
      pooling,
      docs: subset
    })
    const t0 = performance.now()
    const { stats, manifest } = await encodeDataset(record, {
      objects,
      datasets,
      encoder,
      allowLocalSources: false,
      maxTokensPerBatch
    })
    const total = (performance.now() - t0) / 1000
    // The statistics file (histogram, top documents per latent) is written once per part and once merged: a cost per
    // latent, not per token. Timed again here to tell it from the shards.
    const latentStats = await readLatentStats(objects, layout.datasetPrefix('local', 'ds_bench') + manifest.stats.key)
    const t1 = performance.now()
    writeLatentStats(latentStats)
    return {
      seconds: stats.seconds ?? {},
      total,
      activePerDocument: stats.meanActivePerDocument,
      statsWrite: (performance.now() - t1) / 1000
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
const halfDocs = Math.max(1, docs.length >> 1)
const halfTokens = docTokens.slice(0, halfDocs).reduce((a, b) => a + b, 0)
const halfJob = await runJob(docs.slice(0, halfDocs))
const job = await runJob(docs)

// Where the fused graph's time goes: onnxruntime's own per-node profile on a few batches, split into the reader's
// nodes, the SAE's matrix product and every other node the worker adds (bias, threshold, norms, outlier mask, pooling).
const profileDir = await mkdtemp(join(tmpdir(), 'latentbase-profile-'))
const profile = { reader: 0, saeMatMul: 0, other: 0, ops: new Map<string, number>() }
try {
  const readerBytes = new Uint8Array(await readFile(join(args.folder!, 'reader.onnx')))
  const graph = buildPooledGraph(readerBytes, encoder.sae, {
    output: encoder.config.reader.output,
    preprocess: encoder.config.reader.preprocess,
    saeDtype: saeDtype ?? (args.device === 'cuda' ? 'float16' : 'float32'),
    ...pooling
  })
  const session = await InferenceSession.create(graph.bytes, {
    executionProviders: [
      ...(args.device === 'cuda' ? [{ name: 'cuda' }] : []),
      'cpu'
    ] as InferenceSession.ExecutionProviderConfig[],
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: join(profileDir, 'fused')
  })
  const feeds = (b: EncoderBatch) => ({
    [encoder.config.reader.inputs!.ids]: new Tensor('int64', b.ids, [b.batchSize, b.seqLen]),
    [encoder.config.reader.inputs!.mask!]: new Tensor('int64', BigInt64Array.from(b.attention, BigInt), [
      b.batchSize,
      b.seqLen
    ]),
    pool_mask: new Tensor('float32', b.poolMask, [b.batchSize, b.seqLen])
  })
  // Two warm-up runs: the first allocates, the second lays out onnxruntime's memory pattern for the shape (tens of
  // thousands of page faults, which a profile of the second run charges to the SAE's nodes).
  await session.run(feeds(batches[0]))
  await session.run(feeds(batches[0]))
  for (const b of batches.slice(0, Number(args['profile-batches']))) await session.run(feeds(b))
  session.endProfiling()
  await session.release()
  const file = (await readdir(profileDir)).find(f => f.endsWith('.json'))
  const events = file
    ? (JSON.parse(await readFile(join(profileDir, file), 'utf8')) as Array<{
        cat: string
        name: string
        dur: number
        args?: { op_name?: string }
      }>)
    : []
  let runsSeen = 0
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') {
      runsSeen++
      continue
    }
    if (runsSeen < 2 || e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue
    const op = e.args?.op_name ?? '?'
    const ours = e.name.startsWith('latentbase/')
    if (!ours) profile.reader += e.dur
    else if (/MatMul|Gemm/.test(op)) profile.saeMatMul += e.dur
    else {
      profile.other += e.dur
      profile.ops.set(op, (profile.ops.get(op) ?? 0) + e.dur)
    }
  }
} finally {
  await rm(profileDir, { recursive: true, force: true })
}

const rate = (s: number) => `${Math.round(tokens / s).toLocaleString('en-US')} tokens/s`
const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(1)}%`
const row = (name: string, s: number, note = '') =>
  log(`${name.padEnd(44)} ${s.toFixed(2).padStart(7)} s  ${rate(s).padStart(16)}  ${note}`)
const s = job.seconds
const hookIndex = /blocks\.(\d+)\.hook_resid_pre/.exec(encoder.info.hookName)?.[1] ?? '?'
log(
  `workload: ${docs.length} SpamAssassin e-mails, ${tokens.toLocaleString('en-US')} tokens in ${batches.length} batches (${pct(padded - tokens, padded)} padding), max ${encoder.info.maxTokens} tokens each`
)
log(
  `encoder: GPT-2-small shape (random weights), ${hookIndex} of 12 blocks run (${encoder.info.hookName}), SAE d_in ${encoder.info.dIn} x ${encoder.info.dSae.toLocaleString('en-US')} latents (${encoder.info.architecture}); device ${provider}, SAE product ${saeDtype ?? (args.device === 'cuda' ? 'float16' : 'float32')}, ${process.env.LATENTBASE_INTRA_OP_THREADS ?? 'all'} threads`
)
row('reader forward pass only', readerSeconds)
row(
  'fused reader + SAE + max pooling',
  fusedSeconds,
  `SAE + pooling add ${pct(fusedSeconds - readerSeconds, readerSeconds)} over the reader; fused throughput ${pct(readerSeconds, fusedSeconds)} of the reader's`
)
row(
  'fused + top-example capture outputs',
  captureSeconds,
  `capture outputs add ${pct(captureSeconds - fusedSeconds, readerSeconds)} of the reader (every latent a candidate)`
)
row(
  'encode job end to end',
  job.total,
  Object.entries(s)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${(v ?? 0).toFixed(2)} s`)
    .join(', ')
)
// The goal (issue 13): what the job adds to the reader's forward pass over the same tokens, tokenizing aside. The job's
// encode step is the time it waited for the fused graph (with capture outputs); the host's work on a batch runs while
// the next one is in the graph, so the wait and the host's time add up to the job's wall time. Writing splits into the
// two statistics files (a fixed cost per part, per latent) and the shards (per document).
const readerInJob = readerSeconds
const graphAdded = (s.encode ?? 0) - readerInJob
const fixed = 2 * job.statsWrite
const shards = Math.max(0, (s.write ?? 0) - fixed)
const added = graphAdded + shards + (s.topExamples ?? 0)
log(
  `this run as a whole (fixed per-part costs included; the job timed apart from the reader): SAE + pooling + writing add ${pct(added, readerInJob)}: SAE + pooling + capture in the graph ${pct(graphAdded, readerInJob)}, shards and the rest of the write step ${pct(shards, readerInJob)}, top examples on the host ${pct(s.topExamples ?? 0, readerInJob)}`
)
{
  // Per further token: the graph from the interleaved timings (the same batches, alternating, so a swing in the
  // machine's speed hits both alike; the job's own encode step is timed in another stretch), the host's work from the
  // difference between the job on all documents and on the first half, over the reader's time for those tokens.
  const d = (k: string) => (s[k] ?? 0) - (halfJob.seconds[k] ?? 0)
  const readerDelta = (readerSeconds * (tokens - halfTokens)) / tokens
  const graph = (captureSeconds - readerSeconds) / readerSeconds
  const host = [d('write') / readerDelta, d('topExamples') / readerDelta]
  const p = (x: number) => `${(100 * x).toFixed(1)}%`
  log(
    `per further token: SAE + pooling + writing add ${p(graph + host[0] + host[1])} to the reader (goal <= 10%): the graph with capture outputs ${p(graph)} (interleaved), shards and statistics ${p(host[0])} and top examples ${p(host[1])} (the job on ${halfTokens.toLocaleString('en-US')} and ${tokens.toLocaleString('en-US')} tokens: what a part pays once cancels)`
  )
}
log(
  `fixed per part, whatever its size: the statistics file twice (part + merged), ${fixed.toFixed(2)} s = ${pct(fixed, readerInJob)} of this run's reader time, ${pct(fixed, (readerInJob * 2 ** 20) / tokens)} of a full part's (2^20 tokens); tokenizing + planning ${((s.tokenize ?? 0) + (s.plan ?? 0)).toFixed(2)} s`
)
if (precision) log(precision)
const profiled = profile.reader + profile.saeMatMul + profile.other
const topOps = [...profile.ops]
  .sort((a, b) => b[1] - a[1])
  .slice(0, 4)
  .map(([op, us]) => `${op} ${pct(us, profiled)}`)
  .join(', ')
log(
  `fused graph profile (onnxruntime per-node times, ${args['profile-batches']} batches): reader nodes ${pct(profile.reader, profiled)}, SAE product (MatMul) ${pct(profile.saeMatMul, profiled)}, other SAE + pooling nodes ${pct(profile.other, profiled)} (${topOps})`
)
log(
  `FLOPs per token: reader ~${((2 * Number(hookIndex) * 12 * encoder.info.dIn ** 2) / 1e6).toFixed(0)} M (matrix products of ${hookIndex} blocks), SAE encoder ${((2 * encoder.info.dIn * encoder.info.dSae) / 1e6).toFixed(0)} M = ${pct(encoder.info.dIn * encoder.info.dSae, Number(hookIndex) * 12 * encoder.info.dIn ** 2)} of the reader's`
)
log(
  `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (${(rssAfterLoad / 2 ** 20).toFixed(0)} MB after loading the encoder); ${job.activePerDocument.toFixed(0)} latents active per document (max-pooled)`
)
await encoder.close()
