/** @module The local part cache: fetch options and results, sidecar records (size, sha256, ETag), atomic writes and one download per file at a time. */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { RemotePartError } from './refs.ts'

export interface FetchPartOptions {
  /** Root of the cache, e.g. $LATENTBASE_CACHE or ~/.cache/latentbase. */
  cacheDir: string
  /** HF_TOKEN, HF_ENDPOINT (default https://huggingface.co), HF_HUB_OFFLINE. Defaults to process.env. */
  env?: Record<string, string | undefined>
  fetch?: typeof globalThis.fetch
  /** An S3Client (from @aws-sdk/client-s3) for s3:// parts. */
  s3?: { send(cmd: unknown): Promise<unknown> }
  log?: (line: string) => void
  signal?: AbortSignal
  /** Parts larger than this are refused (default 64 GiB). */
  maxBytes?: number
  /** Resumed attempts after an interrupted transfer within one call (default 3). */
  retries?: number
  /** Time allowed for the hub's metadata request (default 10 s), after which the cache is used if it can be. */
  metadataTimeoutMs?: number
}

export interface FetchedPart {
  path: string
  bytes: number
  sha256: string
  /** The commit an hf:// revision resolved to. */
  revision?: string
  fromCache: boolean
}

export const DEFAULT_MAX_BYTES = 64 * 2 ** 30
export const DEFAULT_ENDPOINT = 'https://huggingface.co'

export interface CacheMeta {
  bytes: number
  sha256: string
  etag?: string
  source: string
}

export interface Ctx {
  cacheDir: string
  env: Record<string, string | undefined>
  fetch: typeof globalThis.fetch
  log: (line: string) => void
  signal?: AbortSignal
  maxBytes: number
  retries: number
  metadataTimeoutMs: number
  endpoint: string
  hubHost: string
  token?: string
}

export function context(opts: FetchPartOptions): Ctx {
  const env = opts.env ?? process.env
  const endpoint = (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '')
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined
  return {
    cacheDir: opts.cacheDir,
    env,
    fetch: opts.fetch ?? globalThis.fetch,
    log: opts.log ?? (() => {}),
    signal: opts.signal,
    maxBytes: opts.maxBytes ?? DEFAULT_MAX_BYTES,
    retries: opts.retries ?? 3,
    metadataTimeoutMs: opts.metadataTimeoutMs ?? 10_000,
    endpoint,
    hubHost: new URL(endpoint).host,
    token
  }
}

// Sidecar records live in a tree of their own so that a cached folder holds only the part's own files.
export function metaPath(ctx: Ctx, final: string): string {
  return join(ctx.cacheDir, 'meta', relative(ctx.cacheDir, final) + '.json')
}

export async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}

export async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch {
    return 0
  }
}

export async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, text)
  await rename(tmp, path)
}

export async function hashFile(path: string, hashes: Hash[]): Promise<void> {
  for await (const chunk of createReadStream(path)) for (const h of hashes) h.update(chunk as Buffer)
}

export async function readMeta(ctx: Ctx, final: string): Promise<CacheMeta | undefined> {
  try {
    return JSON.parse(await readFile(metaPath(ctx, final), 'utf8')) as CacheMeta
  } catch {
    return undefined
  }
}

/** A cached file's record; rebuilt from the file when the sidecar is missing (a cache filled by hand). */
export async function cachedPart(ctx: Ctx, final: string, source: string, revision?: string): Promise<FetchedPart> {
  let meta = await readMeta(ctx, final)
  const size = await sizeOf(final)
  if (!meta || meta.bytes !== size) {
    const h = createHash('sha256')
    await hashFile(final, [h])
    meta = { bytes: size, sha256: h.digest('hex'), source }
    await writeAtomic(metaPath(ctx, final), JSON.stringify(meta))
  }
  return { path: final, bytes: meta.bytes, sha256: meta.sha256, ...(revision ? { revision } : {}), fromCache: true }
}

export const inflight = new Map<string, Promise<FetchedPart>>()

/** Concurrent calls for one cache file in this process share one download. */
export function once(final: string, run: () => Promise<FetchedPart>): Promise<FetchedPart> {
  let p = inflight.get(final)
  if (!p) {
    p = run().finally(() => inflight.delete(final))
    inflight.set(final, p)
  }
  return p
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`
  return `${n} B`
}

export function tooLarge(label: string, bytes: number | undefined, max: number): RemotePartError {
  const size = bytes === undefined ? 'grew past the limit' : `is ${formatBytes(bytes)} (${bytes} bytes), over the limit`
  return new RemotePartError(
    'too-large',
    `${label} ${size} of ${formatBytes(max)} (${max} bytes); raise maxBytes to allow it`
  )
}
