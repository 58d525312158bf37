/** @module Opens a dataset source (http(s), or a local file in local mode) as a decompressed byte stream with its format resolved. */
import { retryingFetch } from '@latentbase/shared/net/retry'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { createGunzip } from 'node:zlib'
import type { SourceFormat } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readUploadMeta, uploadIdOf, uploadKeys } from '@latentbase/shared/store/uploads'
import { guardedRequest, RefusedUrlError, type GuardOptions } from '@latentbase/shared/net/url-guard'

export type SourceErrorCode =
  | 'unreachable'
  | 'http-status'
  | 'bad-format'
  | 'wrong-field'
  | 'too-large'
  | 'local-not-allowed'
  | 'refused-url'

/** A source the job cannot read: the message is meant for the user who gave the URL. */
export class SourceError extends Error {
  readonly code: SourceErrorCode
  /** The HTTP status, for `http-status`. */
  readonly status?: number
  constructor(code: SourceErrorCode, message: string, opts: { cause?: unknown; status?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'SourceError'
    this.code = code
    if (opts.status !== undefined) this.status = opts.status
  }
}

export interface OpenSourceOptions {
  /** Local mode: file:// URLs and absolute paths are allowed. */
  allowLocal: boolean
  signal?: AbortSignal
  /** Time allowed until the response headers arrive (default 30 s). */
  connectTimeoutMs?: number
  /** Time allowed between two chunks of the body (default 60 s). */
  idleTimeoutMs?: number
  /** Cap on the decompressed bytes read (default 64 GiB): also the gzip-bomb guard. */
  maxBytes?: number
  /**
   * Cloud mode: fetch through the URL guard (every hop's addresses checked at connect time, no private or
   * metadata addresses, redirects re-checked, `maxBytes` on the compressed bytes too). Left out in local mode,
   * where loopback sources are allowed on purpose.
   */
  guard?: Omit<GuardOptions, 'method' | 'headers' | 'body' | 'signal' | 'timeoutMs' | 'idleTimeoutMs'>
  /** Where `upload://up_...` sources are read: the dataset's tenant's uploads in the object store (no other tenant's). */
  uploads?: { objects: ObjectStore; tenant: string }
  /** Extra request headers for a URL (the Hub's token, for the Hub's hosts only); dropped on a redirect to another origin. */
  headersFor?: (url: string) => Record<string, string>
}

/** A streamed source (everything but Parquet). Iterate `chunks` once; `close` releases it early. */
export interface StreamedSource {
  kind: 'stream'
  format: Exclude<SourceFormat, 'parquet'>
  gzip: boolean
  /** The URL as given, without its query string (safe for messages and logs). */
  name: string
  chunks: AsyncIterable<Uint8Array>
  close(): Promise<void>
}

/** A Parquet source: a local file (spooled to a temp file when remote or gzipped) read by byte ranges. */
export interface FileSource {
  kind: 'file'
  format: 'parquet'
  gzip: boolean
  name: string
  path: string
  byteLength: number
  /** Removes the spooled temp file, if any. */
  close(): Promise<void>
}

export type OpenedSource = StreamedSource | FileSource

const DEFAULT_MAX_BYTES = 64 * 2 ** 30
const SNIFF_BYTES = 4096
const PARQUET_MAGIC = [0x50, 0x41, 0x52, 0x31] // PAR1

/** The format and compression a URL or path names by its extension (a query string or fragment is ignored). */
export function formatFromName(url: string): { format?: SourceFormat; gzip: boolean } {
  let path = url
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) path = decodeURIComponent(new URL(url).pathname)
  } catch {
    /* keep the raw string */
  }
  let lower = path.toLowerCase()
  const gzip = lower.endsWith('.gz') || lower.endsWith('.gzip')
  if (gzip) lower = lower.replace(/\.gz(ip)?$/, '')
  const ext = lower.slice(lower.lastIndexOf('.') + 1)
  const byExt: Record<string, SourceFormat> = {
    jsonl: 'jsonl',
    ndjson: 'jsonl',
    json: 'json',
    csv: 'csv',
    tsv: 'csv',
    parquet: 'parquet',
    pq: 'parquet',
    txt: 'text',
    text: 'text',
    md: 'text'
  }
  return { format: lower.includes('.') ? byExt[ext] : undefined, gzip }
}

/**
 * Guesses the format from the first bytes of the (decompressed) content: Parquet magic, a JSON array,
 * JSON objects (JSONL when the first line is a whole object), CSV when the first line is a header
 * naming `textField`, else text.
 * Throws `bad-format` for binary content.
 */
export function sniffFormat(head: Uint8Array, textField = 'text'): SourceFormat {
  if (startsWith(head, PARQUET_MAGIC)) return 'parquet'
  rejectBinary(head)
  const text = new TextDecoder().decode(head.subarray(0, SNIFF_BYTES)).replace(/^\uFEFF/, '')
  const trimmed = text.trimStart()
  const first = trimmed[0]
  if (first === '[') return 'json'
  if (first === '{') {
    // One object per line is JSONL; an object spread over lines (pretty-printed) is read as JSON values.
    const nl = trimmed.indexOf('\n')
    if (nl === -1) return 'jsonl'
    try {
      JSON.parse(trimmed.slice(0, nl))
      return 'jsonl'
    } catch {
      return 'json'
    }
  }
  const header = text.split(/\r?\n/, 1)[0]
  for (const delimiter of [',', '\t', ';']) {
    const cells = header.split(delimiter).map(c => c.trim().replace(/^"(.*)"$/, '$1'))
    if (cells.length > 1 && cells.includes(textField)) return 'csv'
  }
  return 'text'
}

/** Fails on content that is clearly not one of the text formats (archives, images, NUL bytes). */
function rejectBinary(head: Uint8Array): void {
  const known: Array<[number[], string]> = [
    [[0x50, 0x4b, 0x03, 0x04], 'a zip archive'],
    [[0x28, 0xb5, 0x2f, 0xfd], 'zstd-compressed data'],
    [[0x42, 0x5a, 0x68], 'bzip2-compressed data'],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a], 'xz-compressed data'],
    [[0x89, 0x50, 0x4e, 0x47], 'a PNG image'],
    [[0x25, 0x50, 0x44, 0x46], 'a PDF file']
  ]
  for (const [magic, what] of known) {
    if (startsWith(head, magic))
      throw new SourceError(
        'bad-format',
        `the source is ${what}; supported are JSONL, JSON, CSV, Parquet and plain text, optionally gzipped`
      )
  }
  const n = Math.min(head.length, SNIFF_BYTES)
  for (let i = 0; i < n; i++) {
    if (head[i] === 0)
      throw new SourceError(
        'bad-format',
        'the source looks binary (it holds NUL bytes) and is not Parquet or gzip; supported are JSONL, JSON, CSV, Parquet and plain text, optionally gzipped'
      )
  }
}

/**
 * A web page is not a dataset: read as text it would give a "ready" dataset of markup. Pages are what a browser's address
 * bar holds (a Hub dataset's page, a GitHub file's page), so the message says which URL to give instead. An explicit
 * `format`, or a text file's extension, reads HTML as the user asked.
 */
function rejectHtml(head: Uint8Array, name: string): void {
  const start = new TextDecoder()
    .decode(head.subarray(0, 512))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase()
  if (!start.startsWith('<!doctype html') && !start.startsWith('<html')) return
  throw new SourceError(
    'bad-format',
    `${name} is a web page (HTML), not a data file: give the URL of the file itself (a Hugging Face dataset: hf://datasets/owner/name, its page URL, or hf://datasets/owner/name/path/to/file; a GitHub file: its raw.githubusercontent.com URL), or set format: "text" to read the HTML as text`
  )
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  if (bytes.length < magic.length) return false
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false
  return true
}

/** The URL without credentials or query string, for messages. */
export function displayName(url: string): string {
  try {
    if (/^https?:\/\//i.test(url)) {
      const u = new URL(url)
      return `${u.protocol}//${u.host}${u.pathname}`
    }
  } catch {
    /* not a URL */
  }
  return url
}

/**
 * Opens a source: fetches it (or opens the local file), undoes gzip, and settles the format
 * (`format` when given, else the extension, else the first bytes). Parquet sources are spooled to a
 * temp file because they are read by byte ranges; everything else stays a stream.
 */
export async function openSource(
  spec: { url: string; format?: SourceFormat; textField?: string },
  opts: OpenSourceOptions
): Promise<OpenedSource> {
  let name = displayName(spec.url)
  let fromName = formatFromName(spec.url)
  let raw: RawSource
  const uploadId = uploadIdOf(spec.url)
  if (uploadId) {
    const upload = await openUpload(uploadId, opts)
    name = `the uploaded file ${upload.filename}`
    fromName = formatFromName(upload.filename)
    raw = upload.raw
  } else {
    raw = await openRaw(spec.url, name, opts)
  }
  let head: Uint8Array
  let chunks: AsyncIterable<Uint8Array>
  try {
    ;({ head, chunks } = await peek(raw.chunks, 2))
  } catch (err) {
    await raw.close()
    throw err
  }
  const gzip = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b
  let body = gzip ? gunzip(chunks, name) : chunks
  body = capBytes(body, opts.maxBytes ?? DEFAULT_MAX_BYTES, name)
  let peeked: { head: Uint8Array; chunks: AsyncIterable<Uint8Array> }
  try {
    peeked = await peek(body, SNIFF_BYTES)
  } catch (err) {
    await raw.close()
    throw err
  }
  const format = spec.format ?? fromName.format ?? sniffFormat(peeked.head, spec.textField)
  const isParquet = startsWith(peeked.head, PARQUET_MAGIC)
  if (format === 'parquet') {
    if (!isParquet) {
      await raw.close()
      throw new SourceError('bad-format', `${name} is not a Parquet file (it does not start with the PAR1 magic bytes)`)
    }
    if (raw.localPath && !gzip) {
      await raw.close()
      return {
        kind: 'file',
        format,
        gzip,
        name,
        path: raw.localPath,
        byteLength: (await stat(raw.localPath)).size,
        close: async () => {}
      }
    }
    return spool(peeked.chunks, name, gzip, raw.close)
  }
  if (isParquet) {
    await raw.close()
    throw new SourceError('bad-format', `${name} is a Parquet file, but the format was given as ${format}`)
  }
  try {
    rejectBinary(peeked.head)
    // A page where data was expected: no format given and none or a data format named by the extension (a .txt of
    // HTML e-mails is the user's text, and is read as such).
    if (!spec.format && fromName.format !== 'text') rejectHtml(peeked.head, name)
  } catch (err) {
    await raw.close()
    throw err
  }
  return { kind: 'stream', format, gzip, name, chunks: peeked.chunks, close: raw.close }
}

interface RawSource {
  chunks: AsyncIterable<Uint8Array>
  close(): Promise<void>
  localPath?: string
}

/** An upload of the dataset's own tenant, read whole from the object store (uploads are capped, 100 MB by default). */
async function openUpload(id: string, opts: OpenSourceOptions): Promise<{ raw: RawSource; filename: string }> {
  if (!opts.uploads)
    throw new SourceError('unreachable', `upload://${id}: this worker was given no object store to read uploads from`)
  const { objects, tenant } = opts.uploads
  const meta = await readUploadMeta(objects, tenant, id)
  const bytes = meta ? await objects.get(uploadKeys.data(tenant, id)) : null
  if (!meta || !bytes)
    throw new SourceError(
      'unreachable',
      `upload://${id} was not found for this tenant (deleted, or uploaded with another API key)`
    )
  const CHUNK = 1 << 16
  return {
    filename: meta.filename,
    raw: {
      chunks: (async function* () {
        for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK)
      })(),
      close: async () => {}
    }
  }
}

async function openRaw(url: string, name: string, opts: OpenSourceOptions): Promise<RawSource> {
  if (/^https?:\/\//i.test(url)) return opts.guard ? openGuardedHttp(url, name, opts) : openHttp(url, name, opts)
  let path: string
  if (/^file:\/\//i.test(url)) {
    if (!opts.allowLocal)
      throw new SourceError(
        'local-not-allowed',
        `file:// URLs are only allowed in local mode; give an http(s):// URL (${name})`
      )
    try {
      path = fileURLToPath(url)
    } catch (err) {
      throw new SourceError('unreachable', `${name} is not a valid file:// URL`, { cause: err })
    }
  } else if (isAbsolute(url)) {
    if (!opts.allowLocal)
      throw new SourceError(
        'local-not-allowed',
        `local paths are only allowed in local mode; give an http(s):// URL (${name})`
      )
    path = url
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    throw new SourceError(
      'unreachable',
      `unsupported URL scheme in ${name}: give an http(s):// URL${opts.allowLocal ? ', a file:// URL or an absolute path' : ''}`
    )
  } else {
    throw new SourceError('unreachable', `${name} is neither an http(s):// URL nor an absolute path`)
  }
  try {
    const s = await stat(path)
    if (!s.isFile()) throw new SourceError('unreachable', `${path} is not a regular file`)
  } catch (err) {
    if (err instanceof SourceError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new SourceError(
      'unreachable',
      code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path} (${code ?? (err as Error).message})`,
      { cause: err }
    )
  }
  const stream = createReadStream(path, { highWaterMark: 1 << 16, signal: opts.signal })
  return {
    localPath: path,
    chunks: (async function* () {
      for await (const chunk of stream) yield chunk as Uint8Array
    })(),
    close: async () => {
      stream.destroy()
    }
  }
}

/** Why fetch failed, in words a user can act on (undici hides the cause one or two levels down). */
export function describeFetchError(err: unknown, host: string): string {
  let cause: unknown = err
  for (let i = 0; i < 4 && cause && typeof cause === 'object'; i++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === 'string') {
      if (code === 'ECONNREFUSED') return `connection refused by ${host}`
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME')
        return `host not found: DNS lookup failed for ${host.replace(/:\d+$/, '')}`
      if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `the connection to ${host} was reset`
      if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return `timed out connecting to ${host}`
      if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `${host} is unreachable from here (${code})`
      if (code.startsWith('ERR_TLS') || code.includes('CERT')) return `TLS error talking to ${host} (${code})`
    }
    cause = (cause as { cause?: unknown }).cause
  }
  return `could not fetch from ${host}: ${(err as Error).message}`
}

async function openHttp(url: string, name: string, opts: OpenSourceOptions): Promise<RawSource> {
  const host = new URL(url).host
  const controller = new AbortController()
  let timedOut: string | null = null
  const onAbort = () => controller.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const detach = () => opts.signal?.removeEventListener('abort', onAbort)
  const connectMs = opts.connectTimeoutMs ?? 30_000
  let timer: NodeJS.Timeout | undefined = setTimeout(() => {
    timedOut = `timed out after ${connectMs / 1000} s waiting for ${host} to answer (${name})`
    controller.abort()
  }, connectMs)
  let response: Response
  try {
    // A GET: sent again on a fresh connection if a pooled one was reset under it (see shared/net/retry).
    response = await retryingFetch()(url, {
      signal: controller.signal,
      headers: { 'user-agent': 'latentbase-worker', ...opts.headersFor?.(url) },
      redirect: 'follow'
    })
  } catch (err) {
    clearTimeout(timer)
    detach()
    if (opts.signal?.aborted) throw opts.signal.reason
    if (timedOut) throw new SourceError('unreachable', timedOut, { cause: err })
    throw new SourceError('unreachable', `${describeFetchError(err, host)} (${name})`, { cause: err })
  }
  clearTimeout(timer)
  if (!response.ok) {
    detach()
    await response.body?.cancel().catch(() => {})
    throw new SourceError(
      'http-status',
      `GET ${name} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
      { status: response.status }
    )
  }
  const body = response.body
  if (!body) {
    detach()
    return { chunks: (async function* () {})(), close: async () => {} }
  }
  const idleMs = opts.idleTimeoutMs ?? 60_000
  const arm = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      timedOut = `timed out: ${host} sent no data for ${idleMs / 1000} s (${name})`
      controller.abort()
    }, idleMs)
  }
  const reader = body.getReader()
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    clearTimeout(timer)
    detach()
    await reader.cancel().catch(() => {})
  }
  return {
    close,
    chunks: (async function* () {
      try {
        for (;;) {
          arm()
          let r: ReadableStreamReadResult<Uint8Array>
          try {
            r = await reader.read()
          } catch (err) {
            clearTimeout(timer)
            if (opts.signal?.aborted) throw opts.signal.reason
            if (timedOut) throw new SourceError('unreachable', timedOut, { cause: err })
            throw new SourceError(
              'unreachable',
              `the download of ${name} broke off: ${describeFetchError(err, host)}`,
              { cause: err }
            )
          }
          // The consumer may take long over a chunk (a reader forward pass): only time the network.
          clearTimeout(timer)
          if (r.done) return
          yield r.value
        }
      } finally {
        await close()
      }
    })()
  }
}

async function openGuardedHttp(url: string, name: string, opts: OpenSourceOptions): Promise<RawSource> {
  const host = new URL(url).host
  const asSourceError = (err: unknown, during: string): unknown => {
    if (opts.signal?.aborted) return opts.signal.reason
    if (err instanceof RefusedUrlError) {
      return new SourceError(
        err.code === 'timeout' ? 'unreachable' : err.code === 'size' ? 'too-large' : 'refused-url',
        `${err.message} (${name})`,
        { cause: err }
      )
    }
    return new SourceError('unreachable', `${during}${describeFetchError(err, host)} (${name})`, { cause: err })
  }
  let res: Awaited<ReturnType<typeof guardedRequest>>
  try {
    res = await guardedRequest(url, {
      ...opts.guard,
      headers: { 'user-agent': 'latentbase-worker', ...opts.headersFor?.(url) },
      signal: opts.signal,
      timeoutMs: opts.connectTimeoutMs ?? 30_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      maxBytes: opts.guard?.maxBytes ?? opts.maxBytes ?? DEFAULT_MAX_BYTES
    })
  } catch (err) {
    throw asSourceError(err, '')
  }
  if (res.status < 200 || res.status >= 300) {
    res.body.destroy()
    throw new SourceError('http-status', `GET ${name} answered HTTP ${res.status}`, { status: res.status })
  }
  const body = res.body
  return {
    close: async () => {
      body.destroy()
    },
    chunks: (async function* () {
      try {
        for await (const chunk of body) yield chunk as Uint8Array
      } catch (err) {
        throw asSourceError(err, 'the download broke off: ')
      } finally {
        body.destroy()
      }
    })()
  }
}

/** Reads at least `n` bytes (or to the end) and gives them back with a stream that replays them first. */
async function peek(
  source: AsyncIterable<Uint8Array>,
  n: number
): Promise<{ head: Uint8Array; chunks: AsyncIterable<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]()
  const taken: Uint8Array[] = []
  let have = 0
  let done = false
  while (have < n) {
    const r = await it.next()
    if (r.done) {
      done = true
      break
    }
    taken.push(r.value)
    have += r.value.length
  }
  const head = taken.length === 1 ? taken[0] : Buffer.concat(taken)
  return {
    head,
    chunks: (async function* () {
      try {
        if (head.length) yield head
        if (done) return
        for (;;) {
          const r = await it.next()
          if (r.done) return
          yield r.value
        }
      } finally {
        await it.return?.()
      }
    })()
  }
}

/** Streaming gunzip (multi-member files included); corrupt or truncated gzip is a `bad-format` error. */
async function* gunzip(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<Uint8Array> {
  const input = Readable.from(source, { objectMode: false })
  const z = createGunzip()
  input.on('error', err => z.destroy(err))
  input.pipe(z)
  try {
    for await (const chunk of z) yield chunk as Uint8Array
  } catch (err) {
    if (err instanceof SourceError || (err as Error).name === 'AbortError') throw err
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new SourceError('bad-format', `${name} is not valid gzip data (${(err as Error).message})`, { cause: err })
    }
    throw err
  } finally {
    input.destroy()
    z.destroy()
  }
}

async function* capBytes(
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  name: string
): AsyncGenerator<Uint8Array> {
  let total = 0
  for await (const chunk of source) {
    total += chunk.length
    if (total > maxBytes)
      throw new SourceError('too-large', `${name} is larger than the ${formatBytes(maxBytes)} a source may have`)
    yield chunk
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${+(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${+(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 2 ** 10) return `${+(n / 2 ** 10).toFixed(1)} KiB`
  return `${n} bytes`
}

/** Writes a stream to a temp file (Parquet needs random access to its footer and column chunks). */
async function spool(
  chunks: AsyncIterable<Uint8Array>,
  name: string,
  gzip: boolean,
  closeRaw: () => Promise<void>
): Promise<FileSource> {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-source-'))
  const path = join(dir, 'source.parquet')
  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true })
  }
  const fh = await open(path, 'w')
  let byteLength = 0
  try {
    for await (const chunk of chunks) {
      await fh.write(chunk)
      byteLength += chunk.length
    }
  } catch (err) {
    await fh.close().catch(() => {})
    await closeRaw()
    await cleanup()
    throw err
  }
  await fh.close()
  await closeRaw()
  return { kind: 'file', format: 'parquet', gzip, name, path, byteLength, close: cleanup }
}
