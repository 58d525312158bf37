/** @module Loads an encoder folder (encoder.json, reader ONNX, tokenizer, SAE, labels) and runs its fused graphs in onnxruntime-node. */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { availableParallelism, homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { Tokenizer } from '@huggingface/tokenizers'
import { EncoderConfig, EncoderInfo } from '@latentbase/shared/contract/encoder'
import type { PoolingSpec } from '@latentbase/shared/contract/dataset'
import type { SaeWeights } from './sae.ts'
import { loadSae, SaeFileError, type LoadedSae } from './formats/index.ts'
import { graphSignature, inferReaderInputs, inferReaderOutput, resolveHook, type ReaderInputNames } from './reader-inference.ts'
import { loadLabels } from './labels.ts'
import { externalDataFiles, writeModelWithExternalData } from './external-data.ts'
import { fetchFolder, fetchPart, isRemotePart, RemotePartError, type FetchPartOptions } from '../fetch/remote-part.ts'
import { tokenizerInfo } from '../prepare/tokenize.ts'
import {
  buildPooledGraph, buildReaderOnlyGraph, buildTokenActivationsGraph, checkReader, decodeModel, POOL_MASK_INPUT,
  type ComposedGraph, type GraphInput,
  LATENT_IDS_INPUT, EXAMPLE_ALL_INPUT, EXAMPLE_THRESHOLD_INPUT,
} from './fused-graph.ts'

export const ENCODER_FILE = 'encoder.json'

/** One batch, right-padded: row b holds tokens [b * seqLen, (b + 1) * seqLen). */
export interface EncoderBatch {
  ids: BigInt64Array | Int32Array
  /** 1 = real token, 0 = padding (fed to the reader's attention mask). */
  attention: Uint8Array
  /** 1 = pool this token; 0 for padding, BOS / special tokens and tokens of roles that are not pooled. */
  poolMask: Float32Array
  batchSize: number
  seqLen: number
  /** Token-activation sessions created with selectLatents: the latents to return, in this order. */
  latentIds?: Int32Array
  /** Pooling sessions created with examples: [dSae] each latent's entry bar, [B] rows whose every active latent is wanted. */
  exampleThreshold?: Float32Array
  exampleAll?: Float32Array
}

export interface PooledBatch {
  /** [B * dSae] pooled value per latent. */
  pooled: Float32Array
  /** [B * dSae] token position of each latent's max (meaningless where the max is 0). */
  argmax: Int32Array
  /** [B] tokens left out of pooling as norm outliers. */
  outliers: Int32Array
  /** Pooling sessions created with examples: the captured windows (see PooledGraphOptions.examples). */
  examples?: CapturedWindows
}

/** N captured (row, latent) pairs and the activations of the 2 * halfWindow + 1 tokens around each one's argmax. */
export interface CapturedWindows {
  /** [N * 2] (row, latent) pairs, row-major. */
  index: Int32Array
  /** [N * width] activations at argmax - halfWindow .. argmax + halfWindow (clamped into the batch). */
  activations: Float32Array
  width: number
}

export interface TokenActivationsBatch {
  /** [B * T * dSae] per-token SAE activations (before masking); [B * T * L] for selected latents. */
  activations: Float32Array
  /** [B * T] activation norm of each token. */
  norms: Float32Array
  /** [B * T] the pool mask after outlier removal (1 = pooled). */
  poolMask: Float32Array
}

export interface EncoderSession<R> {
  run(batch: EncoderBatch): Promise<R>
  release(): Promise<void>
  /** Execution provider the session was created with ('cuda' or 'cpu'). */
  readonly provider: string
}
export type PoolingSession = EncoderSession<PooledBatch>
export type TokenActivationsSession = EncoderSession<TokenActivationsBatch>
export type ReaderOnlySession = EncoderSession<{ hiddenSum: Float32Array }>

/** What the tokenizing / batching stage needs from the encoder. */
export interface PrepareContext {
  tokenizer: Tokenizer
  maxTokens: number
  prependBos: boolean
  bosTokenId: number | null
  eosTokenId: number | null
  padTokenId: number
  specialTokenIds: Set<number>
  longDocuments: 'truncate' | 'window'
  /** Jinja chat template from tokenizer_config.json, when it has one. */
  chatTemplate: string | null
}

/** encoder.json with what a minimal one leaves out filled in from the reader graph and the SAE's metadata. */
export type EncoderConfigResolved = EncoderConfig & {
  reader: EncoderConfig['reader'] & { inputs: ReaderInputNames; output: NonNullable<EncoderConfig['reader']['output']>; hookName: string }
}

export interface LoadedEncoder {
  folder: string
  /** The encoder.json as loaded, with inferred reader inputs, output and hook filled in (also what the fingerprint hashes). */
  config: EncoderConfigResolved
  info: EncoderInfo
  /** sha256 over the canonical encoder config and the hashes of reader, SAE and tokenizer files. */
  baseFingerprint: string
  sae: SaeWeights
  tokenizer: Tokenizer
  tokenizerConfig: Record<string, unknown>
  labels: (string | null)[]
  labelSources: (string | null)[]
  /** Detection score of each label when the labels file gives one (offline labels do), else null. */
  labelDetection: (number | null)[]
  specialTokenIds: Set<number>
  bosTokenId: number | null
  eosTokenId: number | null
  padTokenId: number
  prepareContext: PrepareContext
  /** Readable text of one token (for highlighting top examples). */
  tokenText(id: number): string
  /** With examples, the session also captures top-example windows in the same pass (batch.exampleThreshold / exampleAll). */
  createPoolingSession(pooling: PoolingSpec, opts?: { examples?: { halfWindow: number } }): Promise<PoolingSession>
  /** Per-token activations of every latent [B, T, S], or with selectLatents of batch.latentIds only [B, T, L]. */
  createTokenActivationsSession(opts?: { outlierNormRatio?: number; selectLatents?: boolean }): Promise<TokenActivationsSession>
  createReaderOnlySession(): Promise<ReaderOnlySession>
  close(): Promise<void>
}

export interface LoadEncoderOptions {
  /** e.g. ['cuda', 'cpu']; defaults to ['cuda'] when LATENTBASE_DEVICE=cuda, else ['cpu']. */
  executionProviders?: string[]
  /** defaults to LATENTBASE_INTRA_OP_THREADS, else os.availableParallelism(). */
  intraOpNumThreads?: number
  log?: (line: string) => void
  /**
   * Where parts named by hf://, https:// or s3:// URLs are downloaded once (default LATENTBASE_CACHE, else
   * ~/.cache/latentbase); also where composed graphs of external-data readers are written.
   */
  cacheDir?: string
  /** Passed to the part fetcher (tests inject fetch, env with HF_ENDPOINT / HF_TOKEN, an S3 client). */
  fetchOptions?: Omit<FetchPartOptions, 'cacheDir'>
  /**
   * Precision of the SAE's matrix product: default float16 when CUDA is requested (half the weight memory, tensor
   * cores), else float32; LATENTBASE_SAE_DTYPE overrides. Part of the fingerprint when float16: values differ
   * in the third significant digit, so datasets encoded both ways are not compared silently.
   */
  saeDtype?: 'float32' | 'float16'
  /** Composed graphs whose inline weights pass this many bytes keep them in external data (default 1.8 GB; tests lower it). */
  inlineLimitBytes?: number
}

/** The files each SAE format keeps in its folder, for folder references on the hub or S3. */
const SAE_FOLDER_FILES: Record<string, string[]> = {
  saelens: ['cfg.json', 'sae_weights.safetensors'],
  sparsify: ['cfg.json', 'sae.safetensors'],
}

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return env.LATENTBASE_CACHE || join(homedir(), '.cache', 'latentbase')
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex')

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** The manifest's encoderFingerprint: two datasets are comparable only when these are equal. */
export function datasetFingerprint(baseFingerprint: string, pooling: PoolingSpec, maxTokens: number, longDocuments: 'truncate' | 'window'): string {
  return sha256(canonicalJson({
    base: baseFingerprint,
    pooling: { method: pooling.method, outlierNormRatio: pooling.outlierNormRatio },
    maxTokens, longDocuments,
    sparsification: null,
  }))
}

/** SentencePiece (▁), byte-level BPE (Ġ Ċ) and byte-fallback (<0x0A>) spellings turned into text. */
function readableToken(token: string): string {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(token)
  if (byte) return String.fromCharCode(parseInt(byte[1], 16))
  return token.replace(/\u2581/g, ' ').replace(/\u0120/g, ' ').replace(/\u010a/g, '\n').replace(/\u0109/g, '\t')
}

async function readBytes(path: string, field: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path)
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  } catch (err) {
    throw new Error(`${ENCODER_FILE}: ${field}: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try { return JSON.parse(new TextDecoder().decode(bytes)) } catch (err) { throw new Error(`${what}: not valid JSON (${(err as Error).message})`) }
}

export function requestedProviders(opts: LoadEncoderOptions = {}): string[] {
  if (opts.executionProviders?.length) return opts.executionProviders
  return process.env.LATENTBASE_DEVICE === 'cuda' ? ['cuda'] : ['cpu']
}

function threadCount(opts: LoadEncoderOptions): number {
  if (opts.intraOpNumThreads) return opts.intraOpNumThreads
  const env = Number(process.env.LATENTBASE_INTRA_OP_THREADS)
  return Number.isInteger(env) && env > 0 ? env : availableParallelism()
}

/** Create a session on the requested providers; if an accelerator is missing, fall back to CPU and say so. */
async function createSession(bytes: Uint8Array | string, opts: LoadEncoderOptions, what: string): Promise<{ session: InferenceSession; provider: string }> {
  const log = opts.log ?? ((line: string) => console.log(line))
  const providers = requestedProviders(opts)
  const base: InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: threadCount(opts) }
  const accelerated = providers.filter((p) => p !== 'cpu')
  if (accelerated.length) {
    try {
      const session = await (typeof bytes === 'string' ? InferenceSession.create(bytes, { ...base, executionProviders: [...accelerated.map((name) => ({ name })), 'cpu'] as InferenceSession.ExecutionProviderConfig[] }) : InferenceSession.create(bytes, { ...base, executionProviders: [...accelerated.map((name) => ({ name })), 'cpu'] as InferenceSession.ExecutionProviderConfig[] }))
      log(`[encoder] ${what}: running on ${accelerated.join(', ')} (cpu for unsupported nodes)`)
      return { session, provider: accelerated[0] }
    } catch (err) {
      log(`[encoder] ${what}: execution provider ${accelerated.join(', ')} unavailable (${(err as Error).message.split('\n')[0]}); falling back to CPU`)
    }
  }
  const session = await (typeof bytes === 'string' ? InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] }) : InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] }))
  log(`[encoder] ${what}: running on cpu (${base.intraOpNumThreads} threads)`)
  return { session, provider: 'cpu' }
}

/** Load and check an encoder folder. Every error names the file and field at fault. */
export async function loadEncoder(folder: string, opts: LoadEncoderOptions = {}): Promise<LoadedEncoder> {
  const root = resolve(folder)
  const configPath = join(root, ENCODER_FILE)
  const configBytes = await readBytes(configPath, '(file)').catch(() => {
    throw new Error(`${configPath}: cannot be read (is this an encoder folder?)`)
  })
  const parsed = EncoderConfig.safeParse(parseJson(configBytes, configPath))
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
    throw new Error(`${configPath}: ${problems}`)
  }
  const given = parsed.data
  const cacheDir = opts.cacheDir ?? defaultCacheDir()
  const fetchOpts: FetchPartOptions = { log: opts.log, ...opts.fetchOptions, cacheDir }
  // A part is a path relative to the folder, or an hf:// / https:// / s3:// URL downloaded once into the cache.
  const fetched = async (ref: string, field: string, fetch: () => Promise<string>): Promise<string> => {
    try { return await fetch() } catch (err) {
      throw new Error(`${ENCODER_FILE}: ${field}: ${ref}: ${(err as Error).message}`)
    }
  }
  const at = (rel: string) => resolve(root, rel)
  const part = (ref: string, field: string) => isRemotePart(ref) ? fetched(ref, field, async () => (await fetchPart(ref, fetchOpts)).path) : Promise.resolve(at(ref))
  /** A sibling of a remote part, or null when the repository has none (404). */
  const sibling = async (ref: string, name: string): Promise<string | null> => {
    const url = `${ref.slice(0, ref.lastIndexOf('/') + 1)}${name}`
    try { return (await fetchPart(url, fetchOpts)).path } catch (err) {
      if (err instanceof RemotePartError && err.code === 'not-found') return null
      throw new Error(`${ENCODER_FILE}: ${url}: ${(err as Error).message}`)
    }
  }

  const readerPath = await part(given.reader.model, 'reader.model')
  const readerBytes = await readBytes(readerPath, 'reader.model')
  // Readers over 2 GB keep their weights in side files: fetch those beside a remote reader too.
  const readerModel = decodeModel(readerBytes)
  const readerSideFiles = externalDataFiles(readerModel)
  if (isRemotePart(given.reader.model)) {
    for (const file of readerSideFiles) {
      const url = `${given.reader.model.slice(0, given.reader.model.lastIndexOf('/') + 1)}${file}`
      await fetched(url, 'reader.model (external data)', async () => (await fetchPart(url, fetchOpts)).path)
    }
  }
  const tokenizerBytes = await readBytes(await part(given.reader.tokenizer, 'reader.tokenizer'), 'reader.tokenizer')
  let tokenizerConfigBytes: Uint8Array | null = null
  if (given.reader.tokenizerConfig) {
    tokenizerConfigBytes = await readBytes(await part(given.reader.tokenizerConfig, 'reader.tokenizerConfig'), 'reader.tokenizerConfig')
  } else {
    // tokenizer_config.json beside tokenizer.json is the Hugging Face layout: use it when present.
    const besideTokenizer = isRemotePart(given.reader.tokenizer)
      ? await sibling(given.reader.tokenizer, 'tokenizer_config.json')
      : join(dirname(at(given.reader.tokenizer)), 'tokenizer_config.json')
    tokenizerConfigBytes = besideTokenizer === null ? null : await readFile(besideTokenizer)
      .then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).catch(() => null)
  }
  const { format, path: saeRef, ...saeOptions } = given.sae
  let saePath: string
  if (!isRemotePart(saeRef)) saePath = at(saeRef)
  else if (SAE_FOLDER_FILES[format]) {
    saePath = await fetched(saeRef, 'sae.path', async () => (await fetchFolder(saeRef, SAE_FOLDER_FILES[format], fetchOpts)).dir)
  } else {
    saePath = await part(saeRef, 'sae.path')
    // Gemma Scope 2 keeps a config.json beside params.safetensors.
    if (format === 'gemma-scope' && basename(saeRef) === 'params.safetensors') await sibling(saeRef, 'config.json')
  }
  let loadedSae: LoadedSae
  try { loadedSae = await loadSae(format, saePath, saeOptions, { displayRoot: isRemotePart(saeRef) ? dirname(saePath) : root }) } catch (err) {
    if (err instanceof SaeFileError) throw new Error(`${ENCODER_FILE}: sae.path: ${err.message}`)
    throw err
  }
  const sae: SaeWeights = loadedSae.sae
  // A minimal encoder.json leaves the hook to the SAE's metadata; when both say one they must agree: equal names, or two
  // names of the same residual-stream hidden state (layers.6 = blocks.6.hook_resid_post = blocks.7.hook_resid_pre).
  const hookName = resolveHook(sae.hookName, loadedSae.hookOrigin, given.reader.hookName)
  const maxTokens = given.reader.maxTokens ?? sae.contextSize
  if (!maxTokens) throw new Error(`${ENCODER_FILE}: reader.maxTokens is not set and ${loadedSae.contextOrigin}`)

  const envDtype = process.env.LATENTBASE_SAE_DTYPE
  if (envDtype && envDtype !== 'float32' && envDtype !== 'float16') throw new Error(`LATENTBASE_SAE_DTYPE must be float32 or float16, got "${envDtype}"`)
  const saeDtype = opts.saeDtype ?? (envDtype as 'float32' | 'float16' | undefined) ?? (requestedProviders(opts).includes('cuda') ? 'float16' : 'float32')
  // What encoder.json leaves out, the reader graph says: its hidden-state output for the hook, then the inputs that output needs.
  const signature = graphSignature(readerModel)
  const output = given.reader.output ?? inferReaderOutput(signature.outputs, hookName, sae.dIn)
  const readerOpts = { output, preprocess: given.reader.preprocess, saeDtype, inlineLimitBytes: opts.inlineLimitBytes }
  let readerInputs: GraphInput[]
  try { readerInputs = checkReader(readerBytes, readerOpts, sae.dIn) } catch (err) {
    throw new Error(`${given.reader.model}: ${(err as Error).message}`)
  }
  const needed = signature.inputs.filter((v) => readerInputs.some((r) => r.name === v.name))
  const inputs = inferReaderInputs(needed, given.reader.inputs, signature.inputs)
  const config: EncoderConfigResolved = { ...given, reader: { ...given.reader, inputs, output, hookName } }

  const tokenizerJson = parseJson(tokenizerBytes, config.reader.tokenizer) as Record<string, unknown>
  const tokenizerConfig = (tokenizerConfigBytes ? parseJson(tokenizerConfigBytes, config.reader.tokenizerConfig ?? 'tokenizer_config.json') : {}) as Record<string, unknown>
  let tokenizer: Tokenizer
  try { tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig) } catch (err) {
    throw new Error(`${ENCODER_FILE}: reader.tokenizer: ${config.reader.tokenizer} is not a usable tokenizer.json (${(err as Error).message})`)
  }
  const { specialTokenIds, bosTokenId, eosTokenId, padTokenId, chatTemplate } = tokenizerInfo(tokenizer, tokenizerJson, tokenizerConfig)

  let labels: (string | null)[] = new Array(sae.dSae).fill(null)
  let labelSources: (string | null)[] = new Array(sae.dSae).fill(null)
  let labelDetection: (number | null)[] = new Array(sae.dSae).fill(null)
  let labelled = 0
  if (config.labels) {
    const l = await loadLabels(await part(config.labels, 'labels'), sae.dSae, config.labels)
    labels = l.labels; labelSources = l.sources; labelled = l.labelled; labelDetection = l.detection ?? labelDetection
  }

  const baseFingerprint = sha256(canonicalJson({
    encoder: config,
    ...(saeDtype === 'float16' ? { saeDtype } : {}),
    files: {
      reader: sha256(readerBytes),
      tokenizer: sha256(tokenizerBytes),
      tokenizerConfig: tokenizerConfigBytes ? sha256(tokenizerConfigBytes) : null,
      saeCfg: loadedSae.files.find((f) => f.role === 'saeCfg')?.sha256 ?? null,
      saeWeights: loadedSae.files.find((f) => f.role === 'saeWeights')?.sha256 ?? null,
    },
  }))
  const info = EncoderInfo.parse({
    id: config.id,
    ...(config.description ? { description: config.description } : {}),
    fingerprint: baseFingerprint,
    hookName: sae.hookName,
    dIn: sae.dIn,
    dSae: sae.dSae,
    architecture: sae.architecture,
    maxTokens,
    labelled,
  })

  const tokenTexts = new Map<number, string>()
  const tokenText = (id: number): string => {
    let t = tokenTexts.get(id)
    if (t === undefined) { t = readableToken(tokenizer.id_to_token(id) ?? ''); tokenTexts.set(id, t) }
    return t
  }

  const feeds = (batch: EncoderBatch, withPoolMask: boolean): Record<string, Tensor> => {
    const { batchSize: B, seqLen: T } = batch
    const n = B * T
    if (batch.ids.length !== n || batch.attention.length !== n || batch.poolMask.length !== n) {
      throw new Error(`batch: ids (${batch.ids.length}), attention (${batch.attention.length}) and poolMask (${batch.poolMask.length}) must each hold batchSize x seqLen = ${n} values`)
    }
    const out: Record<string, Tensor> = {}
    for (const input of readerInputs) {
      let values: ArrayLike<number> | ArrayLike<bigint>
      if (input.name === inputs.ids) values = batch.ids
      else if (input.name === inputs.mask) values = batch.attention
      else {
        const positions = new Int32Array(n)
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = t
        values = positions
      }
      out[input.name] = toTensor(values, input.type, [B, T])
    }
    if (withPoolMask) out[POOL_MASK_INPUT] = new Tensor('float32', batch.poolMask, [B, T])
    return out
  }

  const sessions: InferenceSession[] = []
  const open = async (graph: ComposedGraph, what: string) => {
    // onnxruntime resolves external data only for a model file on disk, relative to it: write the composed graph
    // into the cache beside links to the reader's side files and its own (an SAE past the 2 GB protobuf limit), in
    // a folder named by the hash of both (the graph alone names offsets, not the weights).
    const side = graph.externalData
    const key = side ? createHash('sha256').update(graph.bytes).update(side.bytes).digest('hex') : sha256(graph.bytes)
    const model = readerSideFiles.length || side
      ? await writeModelWithExternalData(join(cacheDir, 'composed', key.slice(0, 24)), 'model.onnx', graph.bytes, side ?? null, dirname(readerPath), readerSideFiles)
      : graph.bytes
    const { session, provider } = await createSession(model, opts, `${config.id} ${what}`)
    sessions.push(session)
    return { session, provider }
  }
  const release = (session: InferenceSession) => async () => {
    const i = sessions.indexOf(session)
    if (i >= 0) { sessions.splice(i, 1); await session.release() }
  }

  const encoder: LoadedEncoder = {
    folder: root, config, info, baseFingerprint, sae, tokenizer, tokenizerConfig,
    labels, labelSources, labelDetection, specialTokenIds, bosTokenId, eosTokenId, padTokenId,
    prepareContext: {
      tokenizer, maxTokens, prependBos: config.reader.prependBos, bosTokenId, eosTokenId, padTokenId,
      specialTokenIds, longDocuments: config.reader.longDocuments, chatTemplate,
    },
    tokenText,

    async createPoolingSession(pooling, o = {}) {
      const graph = buildPooledGraph(readerBytes, sae, { ...readerOpts, method: pooling.method, outlierNormRatio: pooling.outlierNormRatio, examples: o.examples })
      const { session, provider } = await open(graph, `pooling (${pooling.method})${o.examples ? ' + top examples' : ''}`)
      return {
        provider,
        release: release(session),
        async run(batch) {
          const input = feeds(batch, true)
          if (o.examples) {
            const threshold = batch.exampleThreshold ?? new Float32Array(sae.dSae)
            const all = batch.exampleAll ?? new Float32Array(batch.batchSize)
            if (threshold.length !== sae.dSae || all.length !== batch.batchSize) {
              throw new Error(`batch: exampleThreshold must hold dSae = ${sae.dSae} values and exampleAll batchSize = ${batch.batchSize}`)
            }
            input[EXAMPLE_THRESHOLD_INPUT] = new Tensor('float32', threshold, [sae.dSae])
            input[EXAMPLE_ALL_INPUT] = new Tensor('float32', all, [batch.batchSize])
          }
          const r = await session.run(input)
          return {
            pooled: r.pooled.data as Float32Array,
            argmax: int32Of(r.argmax.data as BigInt64Array),
            outliers: int32Of(r.outliers.data as BigInt64Array),
            ...(o.examples ? {
              examples: {
                index: int32Of(r.example_index.data as BigInt64Array),
                activations: r.example_activations.data as Float32Array,
                width: 2 * o.examples.halfWindow + 1,
              },
            } : {}),
          }
        },
      }
    },

    async createTokenActivationsSession(o = {}) {
      const graph = buildTokenActivationsGraph(readerBytes, sae, { ...readerOpts, outlierNormRatio: o.outlierNormRatio ?? 100, selectLatents: o.selectLatents })
      const { session, provider } = await open(graph, 'token activations')
      return {
        provider,
        release: release(session),
        async run(batch) {
          const input = feeds(batch, true)
          if (o.selectLatents) {
            if (!batch.latentIds?.length) throw new Error('this token-activations session returns selected latents: give batch.latentIds')
            input[LATENT_IDS_INPUT] = new Tensor('int64', BigInt64Array.from(batch.latentIds, BigInt), [batch.latentIds.length])
          }
          const r = await session.run(input)
          return {
            activations: r.activations.data as Float32Array,
            norms: r.norms.data as Float32Array,
            poolMask: r.pool_mask_out.data as Float32Array,
          }
        },
      }
    },

    async createReaderOnlySession() {
      const graph = buildReaderOnlyGraph(readerBytes, readerOpts)
      const { session, provider } = await open(graph, 'reader only')
      return {
        provider,
        release: release(session),
        async run(batch) {
          const r = await session.run(feeds(batch, false))
          return { hiddenSum: r.hidden_sum.data as Float32Array }
        },
      }
    },

    async close() {
      const all = sessions.splice(0)
      await Promise.all(all.map((s) => s.release()))
    },
  }
  return encoder
}

function int32Of(values: BigInt64Array): Int32Array {
  const out = new Int32Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = Number(values[i])
  return out
}

function toTensor(values: ArrayLike<number> | ArrayLike<bigint>, type: GraphInput['type'], dims: number[]): Tensor {
  const n = values.length
  switch (type) {
    case 'int64': {
      if (values instanceof BigInt64Array) return new Tensor('int64', values, dims)
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) out[i] = BigInt(values[i] as number)
      return new Tensor('int64', out, dims)
    }
    case 'int32': {
      if (values instanceof Int32Array) return new Tensor('int32', values, dims)
      return new Tensor('int32', Int32Array.from(values as ArrayLike<number>, Number), dims)
    }
    case 'float32': return new Tensor('float32', Float32Array.from(values as ArrayLike<number>, Number), dims)
    case 'bool': return new Tensor('bool', Uint8Array.from(values as ArrayLike<number>, (v) => (Number(v) ? 1 : 0)), dims)
    case 'float16': throw new Error('reader inputs of type float16 are not supported')
  }
}
