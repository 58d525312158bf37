/**
 * @module Reads an encoder folder's files: encoder.json, then each part it names (a path in the folder, or an
 * hf:// / https:// / s3:// ref fetched once into the cache): the reader and its side files, the tokenizer, the SAE.
 */
import { readFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { EncoderConfig } from '@latentbase/shared/contract/encoder'
import type { onnx as Onnx } from 'onnx-proto'
import { externalDataFiles } from './external-data.ts'
import { loadSae, SaeFileError, type LoadedSae } from './formats/index.ts'
import { decodeModel } from './fused-graph.ts'
import { fetchFolder, fetchPart, isRemotePart, RemotePartError, type FetchPartOptions } from './remote/remote-part.ts'

export const ENCODER_FILE = 'encoder.json'

/** The files each SAE format keeps in its folder, for folder references on the hub or S3. */
const SAE_FOLDER_FILES: Record<string, string[]> = {
  saelens: ['cfg.json', 'sae_weights.safetensors'],
  sparsify: ['cfg.json', 'sae.safetensors']
}

export async function readBytes(path: string, field: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path)
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  } catch (err) {
    throw new Error(
      `${ENCODER_FILE}: ${field}: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    )
  }
}

export function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${(err as Error).message})`)
  }
}

/** encoder.json of the folder, checked against the contract; every problem named by its field. */
export async function readEncoderConfig(root: string): Promise<EncoderConfig> {
  const configPath = join(root, ENCODER_FILE)
  const configBytes = await readBytes(configPath, '(file)').catch(() => {
    throw new Error(`${configPath}: cannot be read (is this an encoder folder?)`)
  })
  const parsed = EncoderConfig.safeParse(parseJson(configBytes, configPath))
  if (!parsed.success) {
    const problems = parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
    throw new Error(`${configPath}: ${problems}`)
  }
  return parsed.data
}

/** Turns part refs of one encoder folder into local paths. */
export interface Parts {
  root: string
  /** A part: a path relative to the folder, or a remote ref downloaded once into the cache. */
  part(ref: string, field: string): Promise<string>
  /** A remote sibling of a remote part, or null when the repository has none (404). */
  sibling(ref: string, name: string): Promise<string | null>
  /** Runs a fetch, naming the encoder.json field and ref in its error. */
  fetched(ref: string, field: string, fetch: () => Promise<string>): Promise<string>
  fetchOpts: FetchPartOptions
}

export function partResolver(root: string, fetchOpts: FetchPartOptions): Parts {
  const fetched = async (ref: string, field: string, fetch: () => Promise<string>): Promise<string> => {
    try {
      return await fetch()
    } catch (err) {
      throw new Error(`${ENCODER_FILE}: ${field}: ${ref}: ${(err as Error).message}`)
    }
  }
  return {
    root,
    fetchOpts,
    fetched,
    part: (ref, field) =>
      isRemotePart(ref)
        ? fetched(ref, field, async () => (await fetchPart(ref, fetchOpts)).path)
        : Promise.resolve(resolve(root, ref)),
    async sibling(ref, name) {
      const url = `${ref.slice(0, ref.lastIndexOf('/') + 1)}${name}`
      try {
        return (await fetchPart(url, fetchOpts)).path
      } catch (err) {
        if (err instanceof RemotePartError && err.code === 'not-found') return null
        throw new Error(`${ENCODER_FILE}: ${url}: ${(err as Error).message}`)
      }
    }
  }
}

export interface ReaderFiles {
  readerPath: string
  readerBytes: Uint8Array
  readerModel: Onnx.ModelProto
  /** External-data files the reader's initializers live in (readers over 2 GB), relative to the reader. */
  readerSideFiles: string[]
  tokenizerBytes: Uint8Array
  tokenizerConfigBytes: Uint8Array | null
}

/** The reader model (with its external data beside a remote one), tokenizer.json and tokenizer_config.json. */
export async function readReaderFiles(given: EncoderConfig, parts: Parts): Promise<ReaderFiles> {
  const readerPath = await parts.part(given.reader.model, 'reader.model')
  const readerBytes = await readBytes(readerPath, 'reader.model')
  // Readers over 2 GB keep their weights in side files: fetch those beside a remote reader too.
  const readerModel = decodeModel(readerBytes)
  const readerSideFiles = externalDataFiles(readerModel)
  if (isRemotePart(given.reader.model)) {
    for (const file of readerSideFiles) {
      const url = `${given.reader.model.slice(0, given.reader.model.lastIndexOf('/') + 1)}${file}`
      await parts.fetched(url, 'reader.model (external data)', async () => (await fetchPart(url, parts.fetchOpts)).path)
    }
  }
  const tokenizerBytes = await readBytes(
    await parts.part(given.reader.tokenizer, 'reader.tokenizer'),
    'reader.tokenizer'
  )
  let tokenizerConfigBytes: Uint8Array | null = null
  if (given.reader.tokenizerConfig) {
    tokenizerConfigBytes = await readBytes(
      await parts.part(given.reader.tokenizerConfig, 'reader.tokenizerConfig'),
      'reader.tokenizerConfig'
    )
  } else {
    // tokenizer_config.json beside tokenizer.json is the Hugging Face layout: use it when present.
    const besideTokenizer = isRemotePart(given.reader.tokenizer)
      ? await parts.sibling(given.reader.tokenizer, 'tokenizer_config.json')
      : join(dirname(resolve(parts.root, given.reader.tokenizer)), 'tokenizer_config.json')
    tokenizerConfigBytes =
      besideTokenizer === null
        ? null
        : await readFile(besideTokenizer)
            .then(b => new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
            .catch(() => null)
  }
  return { readerPath, readerBytes, readerModel, readerSideFiles, tokenizerBytes, tokenizerConfigBytes }
}

/** The SAE in its format (a file, or a folder fetched file by file from a remote ref). */
export async function readSae(given: EncoderConfig, parts: Parts): Promise<LoadedSae> {
  const { format, path: saeRef, ...saeOptions } = given.sae
  let saePath: string
  if (!isRemotePart(saeRef)) saePath = resolve(parts.root, saeRef)
  else if (SAE_FOLDER_FILES[format]) {
    saePath = await parts.fetched(
      saeRef,
      'sae.path',
      async () => (await fetchFolder(saeRef, SAE_FOLDER_FILES[format], parts.fetchOpts)).dir
    )
  } else {
    saePath = await parts.part(saeRef, 'sae.path')
    // Gemma Scope 2 keeps a config.json beside params.safetensors.
    if (format === 'gemma-scope' && basename(saeRef) === 'params.safetensors')
      await parts.sibling(saeRef, 'config.json')
  }
  try {
    return await loadSae(format, saePath, saeOptions, {
      displayRoot: isRemotePart(saeRef) ? dirname(saePath) : parts.root
    })
  } catch (err) {
    if (err instanceof SaeFileError) throw new Error(`${ENCODER_FILE}: sae.path: ${err.message}`)
    throw err
  }
}
