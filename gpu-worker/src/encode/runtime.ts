/** @module Loads an encoder folder (encoder.json, reader ONNX, tokenizer, SAE, labels) and runs its fused graphs in onnxruntime-node. */
import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { EncoderInfo, type EncoderConfig } from '@latentbase/shared/contract/encoder'
import type { PoolingSpec } from '@latentbase/shared/contract/dataset'
import type { SaeWeights } from './architectures/index.ts'
import {
  ENCODER_FILE,
  parseJson,
  partResolver,
  readEncoderConfig,
  readReaderFiles,
  readSae,
  type Parts,
  type ReaderFiles
} from './encoder-files.ts'
import type { LoadedSae } from './formats/index.ts'
import { checkReader, SAE_DTYPES, type GraphInput, type ReaderGraphOptions, type SaeDtype } from './fused-graph.ts'
import { loadLabels } from './labels.ts'
import { labelsVersionOf } from '@latentbase/shared/catalog/catalog'
import {
  graphSignature,
  inferReaderInputs,
  inferReaderOutput,
  resolveHook,
  type ReaderInputNames
} from './reader-inference.ts'
import type { FetchPartOptions } from './remote/remote-part.ts'
import { encoderSessions, requestedProviders } from './sessions.ts'
import { tokenizerInfo } from '../prepare/tokenize.ts'

export { ENCODER_FILE } from './encoder-files.ts'
export { requestedProviders } from './sessions.ts'

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
  /** [B * dSae] each latent's largest activation over the pooled tokens (sessions with selected latents only). */
  tokenMax?: Float32Array
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
  reader: EncoderConfig['reader'] & {
    inputs: ReaderInputNames
    output: NonNullable<EncoderConfig['reader']['output']>
    hookName: string
  }
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
  createTokenActivationsSession(opts?: {
    outlierNormRatio?: number
    selectLatents?: boolean
  }): Promise<TokenActivationsSession>
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
   * cores), else float32; int8 is the CPU's fast mode (about 2x the product's speed, per-token input scales);
   * LATENTBASE_SAE_DTYPE overrides. Part of the fingerprint when not float32: values differ in the third
   * significant digit (float16) or the second (int8), so datasets encoded two ways are not compared silently.
   */
  saeDtype?: SaeDtype
  /** Composed graphs whose inline weights pass this many bytes keep them in external data (default 1.8 GB; tests lower it). */
  inlineLimitBytes?: number
}

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return env.LATENTBASE_CACHE || join(homedir(), '.cache', 'latentbase')
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex')

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** The manifest's encoderFingerprint: two datasets are comparable only when these are equal. */
export function datasetFingerprint(
  baseFingerprint: string,
  pooling: PoolingSpec,
  maxTokens: number,
  longDocuments: 'truncate' | 'window'
): string {
  return sha256(
    canonicalJson({
      base: baseFingerprint,
      pooling: { method: pooling.method, outlierNormRatio: pooling.outlierNormRatio },
      maxTokens,
      longDocuments,
      sparsification: null
    })
  )
}

/** SentencePiece (▁), byte-level BPE (Ġ Ċ) and byte-fallback (<0x0A>) spellings turned into text. */
function readableToken(token: string): string {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(token)
  if (byte) return String.fromCharCode(parseInt(byte[1], 16))
  return token
    .replace(/\u2581/g, ' ')
    .replace(/\u0120/g, ' ')
    .replace(/\u010a/g, '\n')
    .replace(/\u0109/g, '\t')
}

/** Load and check an encoder folder. Every error names the file and field at fault. */
export async function loadEncoder(folder: string, opts: LoadEncoderOptions = {}): Promise<LoadedEncoder> {
  const root = resolve(folder)
  const given = await readEncoderConfig(root)
  const cacheDir = opts.cacheDir ?? defaultCacheDir()
  const parts = partResolver(root, { log: opts.log, ...opts.fetchOptions, cacheDir })
  const files = await readReaderFiles(given, parts)
  const loadedSae = await readSae(given, parts)
  const sae = loadedSae.sae
  const wired = wireReader(given, files, loadedSae, opts)
  const { config, maxTokens } = wired
  const tokens = readTokenizer(config, files)
  const labels = await readLabels(config, sae.dSae, parts)
  const baseFingerprint = encoderFingerprint(config, wired.readerOpts.saeDtype, files, loadedSae)
  const info = EncoderInfo.parse({
    id: config.id,
    ...(config.description ? { description: config.description } : {}),
    fingerprint: baseFingerprint,
    hookName: sae.hookName,
    dIn: sae.dIn,
    dSae: sae.dSae,
    architecture: sae.architecture,
    maxTokens,
    labelled: labels.labelled,
    labelsVersion: labelsVersionOf(labels.labels, labels.labelSources, labels.labelDetection)
  })
  const { tokenizer, tokenizerConfig, specialTokenIds, bosTokenId, eosTokenId, padTokenId, chatTemplate } = tokens
  return {
    folder: root,
    config,
    info,
    baseFingerprint,
    sae,
    tokenizer,
    tokenizerConfig,
    labels: labels.labels,
    labelSources: labels.labelSources,
    labelDetection: labels.labelDetection,
    specialTokenIds,
    bosTokenId,
    eosTokenId,
    padTokenId,
    prepareContext: {
      tokenizer,
      maxTokens,
      prependBos: config.reader.prependBos,
      bosTokenId,
      eosTokenId,
      padTokenId,
      specialTokenIds,
      longDocuments: config.reader.longDocuments,
      chatTemplate
    },
    tokenText: tokenTexts(tokenizer),
    ...encoderSessions({
      id: config.id,
      readerBytes: files.readerBytes,
      readerPath: files.readerPath,
      readerSideFiles: files.readerSideFiles,
      sae,
      readerOpts: wired.readerOpts,
      readerInputs: wired.readerInputs,
      inputs: config.reader.inputs,
      cacheDir,
      opts
    })
  }
}

interface WiredReader {
  config: EncoderConfigResolved
  maxTokens: number
  readerOpts: ReaderGraphOptions & { saeDtype: SaeDtype }
  /** The reader inputs the graph pruned at the hook still needs. */
  readerInputs: GraphInput[]
}

/**
 * What encoder.json leaves out, filled in and checked against the reader and the SAE: the hook, the context
 * length, the SAE product's precision, the reader's hidden-state output and the inputs that output needs.
 */
function wireReader(
  given: EncoderConfig,
  files: ReaderFiles,
  loadedSae: LoadedSae,
  opts: LoadEncoderOptions
): WiredReader {
  const sae = loadedSae.sae
  // A minimal encoder.json leaves the hook to the SAE's metadata; when both say one they must agree: equal names, or two
  // names of the same residual-stream hidden state (layers.6 = blocks.6.hook_resid_post = blocks.7.hook_resid_pre).
  const hookName = resolveHook(sae.hookName, loadedSae.hookOrigin, given.reader.hookName)
  const maxTokens = given.reader.maxTokens ?? sae.contextSize
  if (!maxTokens) throw new Error(`${ENCODER_FILE}: reader.maxTokens is not set and ${loadedSae.contextOrigin}`)

  const envDtype = process.env.LATENTBASE_SAE_DTYPE
  if (envDtype && !SAE_DTYPES.includes(envDtype as SaeDtype))
    throw new Error(`LATENTBASE_SAE_DTYPE must be one of ${SAE_DTYPES.join(', ')}, got "${envDtype}"`)
  const cuda = requestedProviders(opts).includes('cuda')
  const saeDtype: SaeDtype = opts.saeDtype ?? (envDtype as SaeDtype | undefined) ?? (cuda ? 'float16' : 'float32')
  // onnxruntime's integer product has no CUDA kernel: the graph would run split between the devices, slower than float16.
  if (saeDtype === 'int8' && cuda)
    throw new Error('SAE precision int8 is for the CPU; on CUDA use float16 (the default there) or float32')
  // What encoder.json leaves out, the reader graph says: its hidden-state output for the hook, then the inputs that output needs.
  const signature = graphSignature(files.readerModel)
  const output = given.reader.output ?? inferReaderOutput(signature.outputs, hookName, sae.dIn)
  const readerOpts = { output, preprocess: given.reader.preprocess, saeDtype, inlineLimitBytes: opts.inlineLimitBytes }
  let readerInputs: GraphInput[]
  try {
    readerInputs = checkReader(files.readerBytes, readerOpts, sae.dIn)
  } catch (err) {
    throw new Error(`${given.reader.model}: ${(err as Error).message}`)
  }
  const needed = signature.inputs.filter(v => readerInputs.some(r => r.name === v.name))
  const inputs = inferReaderInputs(needed, given.reader.inputs, signature.inputs)
  const config: EncoderConfigResolved = { ...given, reader: { ...given.reader, inputs, output, hookName } }
  return { config, maxTokens, readerOpts, readerInputs }
}

/** The tokenizer and what preparing documents needs from it (special tokens, BOS / EOS / pad, chat template). */
function readTokenizer(config: EncoderConfigResolved, files: ReaderFiles) {
  const tokenizerJson = parseJson(files.tokenizerBytes, config.reader.tokenizer) as Record<string, unknown>
  const tokenizerConfig = (
    files.tokenizerConfigBytes
      ? parseJson(files.tokenizerConfigBytes, config.reader.tokenizerConfig ?? 'tokenizer_config.json')
      : {}
  ) as Record<string, unknown>
  let tokenizer: Tokenizer
  try {
    tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig)
  } catch (err) {
    throw new Error(
      `${ENCODER_FILE}: reader.tokenizer: ${config.reader.tokenizer} is not a usable tokenizer.json (${(err as Error).message})`
    )
  }
  return { tokenizer, tokenizerConfig, ...tokenizerInfo(tokenizer, tokenizerJson, tokenizerConfig) }
}

/** The latent labels file when encoder.json names one; otherwise every latent unlabelled. */
async function readLabels(config: EncoderConfigResolved, dSae: number, parts: Parts) {
  let labels: (string | null)[] = new Array(dSae).fill(null)
  let labelSources: (string | null)[] = new Array(dSae).fill(null)
  let labelDetection: (number | null)[] = new Array(dSae).fill(null)
  let labelled = 0
  if (config.labels) {
    const l = await loadLabels(await parts.part(config.labels, 'labels'), dSae, config.labels)
    labels = l.labels
    labelSources = l.sources
    labelled = l.labelled
    labelDetection = l.detection ?? labelDetection
  }
  return { labels, labelSources, labelDetection, labelled }
}

/** sha256 over the canonical resolved config (and the SAE precision when not float32) and the hashes of every file read. */
function encoderFingerprint(
  config: EncoderConfigResolved,
  saeDtype: SaeDtype,
  files: ReaderFiles,
  loadedSae: LoadedSae
): string {
  return sha256(
    canonicalJson({
      encoder: config,
      ...(saeDtype !== 'float32' ? { saeDtype } : {}),
      files: {
        reader: sha256(files.readerBytes),
        tokenizer: sha256(files.tokenizerBytes),
        tokenizerConfig: files.tokenizerConfigBytes ? sha256(files.tokenizerConfigBytes) : null,
        saeCfg: loadedSae.files.find(f => f.role === 'saeCfg')?.sha256 ?? null,
        saeWeights: loadedSae.files.find(f => f.role === 'saeWeights')?.sha256 ?? null
      }
    })
  )
}

/** Readable text of a token id, cached per id. */
function tokenTexts(tokenizer: Tokenizer): (id: number) => string {
  const cache = new Map<number, string>()
  return id => {
    let t = cache.get(id)
    if (t === undefined) {
      t = readableToken(tokenizer.id_to_token(id) ?? '')
      cache.set(id, t)
    }
    return t
  }
}
