/** @module Fetches encoder parts named by hf://, https:// and s3:// refs into a local cache: once, resumable, checksum-verified, pinned to a commit. */
import { createHash, type Hash } from 'node:crypto'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'

export type PartUrl =
  | { kind: 'hf'; repo: string; revision: string; path: string; repoType?: 'dataset' }
  | { kind: 'https'; url: string; sha256?: string }
  | { kind: 's3'; bucket: string; key: string; sha256?: string }

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

export type RemotePartErrorCode = 'bad-ref' | 'auth' | 'not-found' | 'checksum' | 'too-large' | 'network' | 'http' | 'interrupted' | 'no-client'

/** A part that cannot be fetched; the message is for the user who wrote the ref. */
export class RemotePartError extends Error {
  readonly code: RemotePartErrorCode
  readonly status?: number
  /** A transfer that may succeed when resumed (network failures, 5xx, a body cut short). */
  readonly retryable: boolean
  constructor(code: RemotePartErrorCode, message: string, opts: { status?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'RemotePartError'
    this.code = code
    this.retryable = opts.retryable ?? false
    if (opts.status !== undefined) this.status = opts.status
  }
}

const DEFAULT_MAX_BYTES = 64 * 2 ** 30
const DEFAULT_ENDPOINT = 'https://huggingface.co'
const COMMIT = /^[0-9a-f]{40}$/
const SHA256 = /^[0-9a-f]{64}$/
const SHA1 = /^[0-9a-f]{40}$/
// The hub's own rule for owner and repo names; `--` and `..` are forbidden there, which keeps `owner--name` unambiguous.
const HUB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

// ---------------------------------------------------------------- refs

export function isRemotePart(ref: string): boolean {
  return /^(hf|s3|https?):\/\//i.test(ref)
}

function badRef(ref: string, problem: string): RemotePartError {
  return new RemotePartError('bad-ref', `bad encoder part ref ${JSON.stringify(ref)}: ${problem}`)
}

/** Checks a relative path inside a repo, bucket or folder: the cache mirrors it on disk, so it must not climb out. */
function checkRelPath(ref: string, path: string, what: string): void {
  if (path.includes('\\') || path.includes('\0')) throw badRef(ref, `${what} ${JSON.stringify(path)} contains a backslash or NUL`)
  for (const seg of path.split('/')) {
    if (seg === '') throw badRef(ref, `${what} ${JSON.stringify(path)} has an empty segment (leading, trailing or double slash)`)
    if (seg === '.' || seg === '..') throw badRef(ref, `${what} ${JSON.stringify(path)} has a "${seg}" segment`)
  }
}

function sha256Fragment(ref: string, hash: string): string | undefined {
  if (hash === '') return undefined
  const m = /^#sha256=([0-9a-fA-F]{64})$/.exec(hash)
  if (!m) throw badRef(ref, `the fragment must be #sha256=<64 hex digits>, got ${JSON.stringify(hash)}`)
  return m[1].toLowerCase()
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Parses an encoder part ref; throws a RemotePartError naming the problem when it is malformed. */
export function parsePartUrl(ref: string): PartUrl {
  return parseRef(ref, false)
}

function parseRef(ref: string, folder: boolean): PartUrl {
  if (typeof ref !== 'string' || ref === '') throw badRef(String(ref), 'empty')
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(ref)?.[1]?.toLowerCase()
  if (scheme === 'hf') {
    let rest = ref.slice(5)
    let repoType: 'dataset' | undefined
    if (rest.startsWith('datasets/')) { repoType = 'dataset'; rest = rest.slice(9) }
    const segs = rest.split('/')
    if (segs.length < 2 || (!folder && segs.length < 3)) throw badRef(ref, 'expected hf://owner/repo[@revision]/path')
    const owner = segs[0]
    const at = segs[1].indexOf('@')
    const name = at < 0 ? segs[1] : segs[1].slice(0, at)
    let revision = 'main'
    if (at >= 0) {
      try { revision = decodeURIComponent(segs[1].slice(at + 1)) } catch { throw badRef(ref, 'the revision is not valid percent-encoding') }
      if (revision === '') throw badRef(ref, 'empty revision after "@"')
    }
    for (const [what, v] of [['owner', owner], ['repo name', name]] as const) {
      if (!HUB_NAME.test(v) || v.includes('--') || v.includes('..')) {
        throw badRef(ref, `${what} ${JSON.stringify(v)} is not a valid Hugging Face name (letters, digits, . _ -; no "--" or "..")`)
      }
    }
    const path = segs.slice(2).join('/')
    if (path !== '' || !folder) checkRelPath(ref, path, 'path')
    return { kind: 'hf', repo: `${owner}/${name}`, revision, path, ...(repoType ? { repoType } : {}) }
  }
  if (scheme === 'https' || scheme === 'http') {
    let u: URL
    try { u = new URL(ref) } catch { throw badRef(ref, 'not a valid URL') }
    if (u.protocol === 'http:' && !isLoopback(u.hostname)) throw badRef(ref, 'plain http is only allowed on loopback; use https')
    if (u.username || u.password) throw badRef(ref, 'credentials in the URL are not allowed')
    const sha256 = sha256Fragment(ref, u.hash)
    if (folder && sha256) throw badRef(ref, 'a #sha256= fragment pins one file and cannot be used on a folder')
    u.hash = ''
    return { kind: 'https', url: u.href, ...(sha256 ? { sha256 } : {}) }
  }
  if (scheme === 's3') {
    const hashAt = ref.indexOf('#')
    const sha256 = sha256Fragment(ref, hashAt < 0 ? '' : ref.slice(hashAt))
    if (folder && sha256) throw badRef(ref, 'a #sha256= fragment pins one file and cannot be used on a folder')
    const body = (hashAt < 0 ? ref : ref.slice(0, hashAt)).slice(5)
    const slash = body.indexOf('/')
    const bucket = slash < 0 ? body : body.slice(0, slash)
    const key = slash < 0 ? '' : body.slice(slash + 1)
    if (!S3_BUCKET.test(bucket)) throw badRef(ref, `bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`)
    // A folder may be written with a trailing slash; a file's key may not end in one.
    const k = folder ? key.replace(/\/+$/, '') : key
    if (k === '') throw badRef(ref, 'expected s3://bucket/key')
    checkRelPath(ref, k, 'key')
    return { kind: 's3', bucket, key: k, ...(sha256 ? { sha256 } : {}) }
  }
  throw badRef(ref, scheme ? `unsupported scheme "${scheme}://" (use hf://, https:// or s3://)` : 'expected hf://, https:// or s3://')
}

// ---------------------------------------------------------------- cache records

interface CacheMeta { bytes: number; sha256: string; etag?: string; source: string }

interface Ctx {
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

function context(opts: FetchPartOptions): Ctx {
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
    token,
  }
}

// Sidecar records live in a tree of their own so that a cached folder holds only the part's own files.
function metaPath(ctx: Ctx, final: string): string {
  return join(ctx.cacheDir, 'meta', relative(ctx.cacheDir, final) + '.json')
}

async function exists(path: string): Promise<boolean> {
  try { return (await stat(path)).isFile() } catch { return false }
}

async function sizeOf(path: string): Promise<number> {
  try { return (await stat(path)).size } catch { return 0 }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, text)
  await rename(tmp, path)
}

async function hashFile(path: string, hashes: Hash[]): Promise<void> {
  for await (const chunk of createReadStream(path)) for (const h of hashes) h.update(chunk as Buffer)
}

async function readMeta(ctx: Ctx, final: string): Promise<CacheMeta | undefined> {
  try { return JSON.parse(await readFile(metaPath(ctx, final), 'utf8')) as CacheMeta } catch { return undefined }
}

/** A cached file's record; rebuilt from the file when the sidecar is missing (a cache filled by hand). */
async function cachedPart(ctx: Ctx, final: string, source: string, revision?: string): Promise<FetchedPart> {
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

const inflight = new Map<string, Promise<FetchedPart>>()

/** Concurrent calls for one cache file in this process share one download. */
function once(final: string, run: () => Promise<FetchedPart>): Promise<FetchedPart> {
  let p = inflight.get(final)
  if (!p) {
    p = run().finally(() => inflight.delete(final))
    inflight.set(final, p)
  }
  return p
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`
  return `${n} B`
}

function tooLarge(label: string, bytes: number | undefined, max: number): RemotePartError {
  const size = bytes === undefined ? 'grew past the limit' : `is ${formatBytes(bytes)} (${bytes} bytes), over the limit`
  return new RemotePartError('too-large', `${label} ${size} of ${formatBytes(max)} (${max} bytes); raise maxBytes to allow it`)
}

// ---------------------------------------------------------------- transfer core

/** One ranged read of the source from `offset`; `start` is where the body really begins (0 when the range was ignored). */
interface Opened {
  start: number
  total?: number
  /** A validator (ETag) that must still match when a later attempt resumes this transfer. */
  validator?: string
  /** A sha256 the source itself vouches for (a quoted 64-hex ETag). */
  sha256?: string
  body: AsyncIterable<Uint8Array>
}

interface Transfer {
  label: string
  final: string
  source: string
  expectedSize?: number
  sha256?: string
  /** Expected git blob id (the hub's ETag of a file not in LFS): sha1 of "blob <size>\0" + content. */
  gitSha1?: string
  /** When known before opening (s3 ETag, hub commit), a partial from another version is discarded. */
  validator?: string
  revision?: string
  open(offset: number, validator: string | undefined): Promise<Opened>
}

async function* readerChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
    await body.cancel().catch(() => {})
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } }
  const cause = e?.cause?.code ?? e?.cause?.message
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err)
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (err as { name?: string })?.name === 'AbortError'
}

/**
 * Downloads into `{final}.partial`, resuming with a ranged read after an interruption, verifies size and digest,
 * records the sidecar, then renames into place so a cache file is only ever complete.
 */
async function transfer(ctx: Ctx, t: Transfer): Promise<FetchedPart> {
  const partial = `${t.final}.partial`
  const validatorFile = `${partial}.etag`
  await mkdir(dirname(t.final), { recursive: true })
  if (t.expectedSize !== undefined && t.expectedSize > ctx.maxBytes) throw tooLarge(t.label, t.expectedSize, ctx.maxBytes)
  let expectedSize = t.expectedSize
  for (let attempt = 0; ; attempt++) {
    let have = await sizeOf(partial)
    const saved = have > 0 ? await readFile(validatorFile, 'utf8').catch(() => undefined) : undefined
    if (have > 0 && t.validator !== undefined && saved !== t.validator) {
      ctx.log(`${t.label}: discarding a partial download of another version`)
      have = 0
    }
    if (expectedSize !== undefined && have > expectedSize) have = 0
    if (have === 0) await rm(partial, { force: true })
    const sha = createHash('sha256')
    const git = t.gitSha1 && expectedSize !== undefined ? createHash('sha1').update(`blob ${expectedSize}\0`) : undefined
    const hashes = git ? [sha, git] : [sha]
    if (have > 0) await hashFile(partial, hashes)
    let got = have
    let pinned = t.sha256
    try {
      if (expectedSize === undefined || have < expectedSize) {
        const opened = await t.open(have, have > 0 ? (saved ?? t.validator) : undefined)
        if (opened.total !== undefined) {
          if (opened.total > ctx.maxBytes) throw tooLarge(t.label, opened.total, ctx.maxBytes)
          expectedSize ??= opened.total
        }
        pinned ??= opened.sha256
        if (opened.start !== have) {
          if (have > 0) ctx.log(`${t.label}: the server ignored the range; downloading from the start`)
          return await restart()
        }
        if (have > 0) ctx.log(`${t.label}: resuming at byte ${have}${expectedSize !== undefined ? ` of ${expectedSize}` : ''}`)
        else ctx.log(`${t.label}: downloading${expectedSize !== undefined ? ` ${formatBytes(expectedSize)}` : ''}`)
        const validator = opened.validator ?? t.validator
        if (validator !== undefined) await writeFile(validatorFile, validator)
        else await rm(validatorFile, { force: true })
        const fh = await open(partial, have > 0 ? 'a' : 'w')
        try {
          for await (const chunk of opened.body) {
            got += chunk.byteLength
            if (got > ctx.maxBytes) throw tooLarge(t.label, undefined, ctx.maxBytes)
            for (const h of hashes) h.update(chunk)
            await fh.write(chunk)
          }
        } finally {
          await fh.close()
        }
      }
      if (expectedSize !== undefined && got < expectedSize) {
        throw new RemotePartError('interrupted', `${t.label}: the body ended after ${got} of ${expectedSize} bytes`, { retryable: true })
      }
    } catch (err) {
      if (err instanceof RemotePartError && err.code === 'too-large') {
        await rm(partial, { force: true })
        throw err
      }
      const retryable = err instanceof RemotePartError ? err.retryable : !isAbort(err, ctx.signal)
      if (!retryable || attempt >= ctx.retries) {
        if (err instanceof RemotePartError && !err.retryable) throw err
        if (isAbort(err, ctx.signal)) throw err
        throw new RemotePartError('interrupted',
          `${t.label}: the transfer failed after ${got} bytes (${describe(err)}); ${got > 0 ? 'the partial download is kept and the next call resumes it' : 'try again'}`,
          { retryable: true, cause: err })
      }
      ctx.log(`${t.label}: transfer interrupted after ${got} bytes (${describe(err)}); resuming (retry ${attempt + 1} of ${ctx.retries})`)
      continue
    }
    if (expectedSize !== undefined && got !== expectedSize) {
      await rm(partial, { force: true })
      throw new RemotePartError('checksum', `${t.label}: received ${got} bytes but the source said ${expectedSize}; the partial download was deleted`)
    }
    const digest = sha.digest('hex')
    if (pinned !== undefined && digest !== pinned) {
      await rm(partial, { force: true })
      await rm(validatorFile, { force: true })
      throw new RemotePartError('checksum', `${t.label}: sha256 mismatch: expected ${pinned}, got ${digest}; the partial download was deleted`)
    }
    if (git && t.gitSha1) {
      const oid = git.digest('hex')
      if (oid !== t.gitSha1) {
        await rm(partial, { force: true })
        await rm(validatorFile, { force: true })
        throw new RemotePartError('checksum', `${t.label}: git blob id mismatch: expected ${t.gitSha1}, got ${oid}; the partial download was deleted`)
      }
    }
    // The sidecar is written before the rename: a file in its final place always has its record.
    const meta: CacheMeta = { bytes: got, sha256: digest, source: t.source, ...(t.validator ? { etag: t.validator } : {}) }
    await writeAtomic(metaPath(ctx, t.final), JSON.stringify(meta))
    await rename(partial, t.final)
    await rm(validatorFile, { force: true })
    ctx.log(`${t.label}: cached ${formatBytes(got)} at ${t.final}`)
    return { path: t.final, bytes: got, sha256: digest, ...(t.revision ? { revision: t.revision } : {}), fromCache: false }
  }

  async function restart(): Promise<FetchedPart> {
    await rm(partial, { force: true })
    await rm(validatorFile, { force: true })
    return transfer(ctx, t)
  }
}

// ---------------------------------------------------------------- http

interface Sent { res: Response; url: string }

/**
 * A request that follows redirects itself: the token goes only to the hub's host, never to a CDN it redirects to.
 * With `stopOffHost`, a redirect to another host is returned rather than followed (the hub's LFS redirect).
 */
async function send(ctx: Ctx, method: string, url: string, headers: Record<string, string>, opts: { stopOffHost?: boolean; signal?: AbortSignal } = {}): Promise<Sent> {
  let current = url
  for (let hop = 0; hop <= 10; hop++) {
    const h: Record<string, string> = { 'accept-encoding': 'identity', ...headers }
    if (ctx.token && new URL(current).host === ctx.hubHost) h.authorization = `Bearer ${ctx.token}`
    let res: Response
    try {
      res = await ctx.fetch(current, { method, headers: h, redirect: 'manual', signal: opts.signal ?? ctx.signal })
    } catch (err) {
      if (isAbort(err, ctx.signal)) throw err
      throw new RemotePartError('network', `cannot reach ${new URL(current).host}: ${describe(err)}`, { retryable: true, cause: err })
    }
    const location = res.headers.get('location')
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, current)
      if (opts.stopOffHost && next.host !== new URL(current).host) return { res, url: current }
      await res.body?.cancel().catch(() => {})
      current = next.href
      continue
    }
    return { res, url: current }
  }
  throw new RemotePartError('http', `too many redirects from ${redact(url)}`)
}

function redact(url: string): string {
  const u = new URL(url)
  u.search = ''
  return u.href
}

/** The hub's ETag forms: `W/"..."` or `"..."` around the id. */
function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

function quotedSha256(etag: string | null): string | undefined {
  const e = normalizeEtag(etag)?.toLowerCase()
  return e && SHA256.test(e) ? e : undefined
}

function parseContentRange(v: string | null): { start: number; total?: number } | undefined {
  const m = v ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(v.trim()) : null
  if (!m) return undefined
  return { start: Number(m[1]), ...(m[2] !== '*' ? { total: Number(m[2]) } : {}) }
}

/** A ranged GET of an http(s) source for `transfer`. */
function httpOpener(ctx: Ctx, url: string, label: string): Transfer['open'] {
  const openAt = async (offset: number, validator: string | undefined): Promise<Opened> => {
    const headers: Record<string, string> = {}
    if (offset > 0) {
      headers.range = `bytes=${offset}-`
      if (validator && !/^sha256:/.test(validator)) headers['if-range'] = validator
    }
    const { res, url: at } = await send(ctx, 'GET', url, headers)
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel().catch(() => {})
      return openAt(0, undefined)
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => {})
      throw new RemotePartError(res.status >= 500 ? 'http' : res.status === 404 ? 'not-found' : res.status === 401 || res.status === 403 ? 'auth' : 'http',
        `${label}: ${redact(at)} answered ${res.status} ${res.statusText}`, { status: res.status, retryable: res.status >= 500 || res.status === 429 })
    }
    if (!res.body) throw new RemotePartError('http', `${label}: ${redact(at)} sent no body`)
    const length = res.headers.get('content-length')
    const etag = res.headers.get('etag') ?? undefined
    let start = 0
    let total = length !== null ? Number(length) : undefined
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'))
      if (!range || range.start !== offset) {
        await res.body.cancel().catch(() => {})
        return openAt(0, undefined)
      }
      start = range.start
      total = range.total
    }
    const sha256 = quotedSha256(res.headers.get('etag'))
    return { start, ...(total !== undefined ? { total } : {}), ...(etag ? { validator: etag } : {}), ...(sha256 ? { sha256 } : {}), body: readerChunks(res.body) }
  }
  return openAt
}

// ---------------------------------------------------------------- hf://

type HfPart = Extract<PartUrl, { kind: 'hf' }>

function hfRoot(ctx: Ctx, p: HfPart): string {
  const [owner, name] = p.repo.split('/')
  return join(ctx.cacheDir, 'hf', `${p.repoType === 'dataset' ? 'datasets--' : ''}${owner}--${name}`)
}

function hfResolveUrl(ctx: Ctx, p: HfPart, revision: string): string {
  const path = p.path.split('/').map(encodeURIComponent).join('/')
  return `${ctx.endpoint}/${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}/resolve/${encodeURIComponent(revision)}/${path}`
}

function hfRef(p: HfPart, revision: string, path = p.path): string {
  const rev = revision === 'main' ? '' : `@${encodeURIComponent(revision)}`
  return `hf://${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}${rev}${path ? `/${path}` : ''}`
}

function hfError(ctx: Ctx, p: HfPart, res: Response): RemotePartError {
  const status = res.status
  const code = res.headers.get('x-error-code') ?? ''
  const page = `${ctx.endpoint}/${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}`
  if (status === 401 || status === 403) {
    const why = code === 'GatedRepo' ? 'is gated' : 'is gated, private or does not exist'
    const token = ctx.token
      ? 'the HF_TOKEN given has no access to it: accept the model\'s licence'
      : 'set HF_TOKEN to a Hugging Face access token and accept the model\'s licence'
    return new RemotePartError('auth', `cannot fetch ${hfRef(p, p.revision)}: the hub answered ${status}; repo ${p.repo} ${why}: ${token} on its hub page ${page}`, { status })
  }
  if (status === 404) {
    if (code === 'RevisionNotFound') return new RemotePartError('not-found', `no revision ${p.revision} in repo ${p.repo} (${page})`, { status })
    if (code === 'RepoNotFound') return new RemotePartError('not-found', `no repo ${p.repo} on ${ctx.endpoint}`, { status })
    return new RemotePartError('not-found', `no file ${p.path} at revision ${p.revision} of repo ${p.repo}`, { status })
  }
  return new RemotePartError('http', `the hub answered ${status} ${res.statusText} for ${hfRef(p, p.revision)}`, { status, retryable: status >= 500 || status === 429 })
}

interface HfMeta { commit: string; downloadUrl: string; size?: number; sha256?: string; gitSha1?: string; lfs: boolean }

/** The hub's metadata for a file: a HEAD on the resolve URL, redirects to the CDN not followed (as huggingface_hub does). */
async function hfHead(ctx: Ctx, p: HfPart): Promise<HfMeta> {
  const signal = AbortSignal.any([AbortSignal.timeout(ctx.metadataTimeoutMs), ...(ctx.signal ? [ctx.signal] : [])])
  let sent: Sent
  try {
    sent = await send(ctx, 'HEAD', hfResolveUrl(ctx, p, p.revision), {}, { stopOffHost: true, signal })
  } catch (err) {
    if (ctx.signal?.aborted) throw err
    if (isAbort(err) || (err as { name?: string })?.name === 'TimeoutError') {
      throw new RemotePartError('network', `the hub at ${ctx.endpoint} did not answer within ${ctx.metadataTimeoutMs} ms`, { retryable: true, cause: err })
    }
    throw err
  }
  const { res } = sent
  const location = res.headers.get('location')
  const redirected = res.status >= 300 && res.status < 400 && location !== null
  if (!redirected && !res.ok) throw hfError(ctx, p, res)
  const commit = res.headers.get('x-repo-commit')?.toLowerCase() ?? (COMMIT.test(p.revision) ? p.revision : undefined)
  if (!commit || !COMMIT.test(commit)) {
    throw new RemotePartError('http', `the hub gave no commit (X-Repo-Commit) for ${hfRef(p, p.revision)}; is ${ctx.endpoint} a Hugging Face hub?`)
  }
  const linked = normalizeEtag(res.headers.get('x-linked-etag'))?.toLowerCase()
  const etag = normalizeEtag(res.headers.get('etag'))?.toLowerCase()
  const sizeHeader = res.headers.get('x-linked-size') ?? (redirected ? null : res.headers.get('content-length'))
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined
  const sha256 = linked && SHA256.test(linked) ? linked : etag && SHA256.test(etag) ? etag : undefined
  const gitSha1 = !sha256 && etag && SHA1.test(etag) ? etag : undefined
  // A file served by the hub itself is fetched at the commit, so a branch that moves mid-download cannot mix versions.
  const downloadUrl = redirected ? new URL(location, sent.url).href : hfResolveUrl(ctx, p, commit)
  return { commit, downloadUrl, lfs: redirected, ...(size !== undefined ? { size } : {}), ...(sha256 ? { sha256 } : {}), ...(gitSha1 ? { gitSha1 } : {}) }
}

function offline(env: Record<string, string | undefined>): boolean {
  const v = (env.HF_HUB_OFFLINE ?? '').toLowerCase()
  return v === '1' || v === 'true' || v === 'yes' || v === 'on'
}

async function fetchHf(ctx: Ctx, p: HfPart, ref: string): Promise<FetchedPart> {
  const root = hfRoot(ctx, p)
  const finalFor = (commit: string) => join(root, commit, ...p.path.split('/'))
  const refFile = join(root, 'refs', encodeURIComponent(p.revision))
  const pinned = COMMIT.test(p.revision)
  if (pinned && await exists(finalFor(p.revision))) return cachedPart(ctx, finalFor(p.revision), ref, p.revision)

  let meta: HfMeta | undefined
  let failure: string | undefined
  if (offline(ctx.env)) failure = 'HF_HUB_OFFLINE is set'
  else {
    try {
      meta = await hfHead(ctx, p)
    } catch (err) {
      if (!(err instanceof RemotePartError && err.code === 'network')) throw err
      failure = err.message
    }
  }
  if (!meta) {
    const commit = pinned ? p.revision : (await readFile(refFile, 'utf8').catch(() => '')).trim()
    if (COMMIT.test(commit) && await exists(finalFor(commit))) {
      ctx.log(`${ref}: ${failure}; using the cached commit ${commit} for ${p.repo}@${p.revision}`)
      return cachedPart(ctx, finalFor(commit), ref, commit)
    }
    throw new RemotePartError('network', `cannot fetch ${ref}: ${failure}, and it is not in the cache at ${root}`)
  }
  const m = meta
  if (!pinned && m.commit !== p.revision) await writeAtomic(refFile, m.commit)
  const final = finalFor(m.commit)
  if (await exists(final)) {
    ctx.log(`${ref}: cached at commit ${m.commit}`)
    return cachedPart(ctx, final, ref, m.commit)
  }
  if (m.size !== undefined && m.size > ctx.maxBytes) throw tooLarge(ref, m.size, ctx.maxBytes)
  return once(final, () => transfer(ctx, {
    label: ref,
    final,
    source: ref,
    revision: m.commit,
    validator: m.sha256 ? `sha256:${m.sha256}` : `commit:${m.commit}`,
    ...(m.size !== undefined ? { expectedSize: m.size } : {}),
    ...(m.sha256 ? { sha256: m.sha256 } : {}),
    ...(m.gitSha1 ? { gitSha1: m.gitSha1 } : {}),
    open: (() => {
      const get = httpOpener(ctx, m.downloadUrl, ref)
      // The hub's own validators are ours (prefixed), not the server's: never send them as If-Range.
      return (offset: number) => get(offset, undefined).then((o) => ({ ...o, validator: undefined }))
    })(),
  }))
}

// ---------------------------------------------------------------- https://

function basenameOf(url: string): string {
  const last = new URL(url).pathname.split('/').filter(Boolean).pop() ?? ''
  let name = ''
  try { name = decodeURIComponent(last) } catch { name = last }
  name = name.replace(/[\\/\0]/g, '_')
  return name === '' || name === '.' || name === '..' ? 'download' : name
}

async function fetchHttpsTo(ctx: Ctx, url: string, sha256: string | undefined, final: string, label: string): Promise<FetchedPart> {
  if (await exists(final)) {
    const cached = await cachedPart(ctx, final, redact(url))
    if (sha256 === undefined || cached.sha256 === sha256) return cached
    ctx.log(`${label}: the cached copy has sha256 ${cached.sha256}, not the pinned ${sha256}; fetching again`)
    await rm(final, { force: true })
  } else if (sha256 === undefined) {
    ctx.log(`${label}: no #sha256= pin; the first copy fetched is the one kept`)
  }
  return once(final, () => transfer(ctx, {
    label, final, source: redact(url), ...(sha256 ? { sha256 } : {}), open: httpOpener(ctx, url, label),
  }))
}

// ---------------------------------------------------------------- s3://

interface S3Head { ETag?: string; ContentLength?: number }
interface S3Get { Body?: unknown; ContentRange?: string; ContentLength?: number; ETag?: string }

function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode
}

async function fetchS3To(ctx: Ctx, client: FetchPartOptions['s3'], bucket: string, key: string, sha256: string | undefined, final: string, label: string): Promise<FetchedPart> {
  if (!client) throw new RemotePartError('no-client', `${label}: s3:// parts need an S3 client (the s3 option)`)
  const { HeadObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3')
  let head: S3Head
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })) as S3Head
  } catch (err) {
    if (isAbort(err, ctx.signal)) throw err
    const status = s3Status(err)
    if (status === 404) throw new RemotePartError('not-found', `no object ${key} in bucket ${bucket} (${label})`, { status })
    if (status === 401 || status === 403) throw new RemotePartError('auth', `${label}: access denied (${status}); check the AWS credentials and the bucket policy`, { status })
    if (status === undefined && await exists(final)) {
      ctx.log(`${label}: cannot reach S3 (${describe(err)}); using the cached copy`)
      return cachedPart(ctx, final, label)
    }
    throw new RemotePartError(status === undefined ? 'network' : 'http', `${label}: ${describe(err)}`, { ...(status ? { status } : {}), cause: err })
  }
  const etag = head.ETag
  if (head.ContentLength !== undefined && head.ContentLength > ctx.maxBytes) throw tooLarge(label, head.ContentLength, ctx.maxBytes)
  if (await exists(final)) {
    const meta = await readMeta(ctx, final)
    if (meta && etag !== undefined && meta.etag === etag && (sha256 === undefined || meta.sha256 === sha256)) return cachedPart(ctx, final, label)
    ctx.log(`${label}: the object changed (ETag ${meta?.etag ?? 'unknown'} -> ${etag}); fetching again`)
    await rm(final, { force: true })
  }
  return once(final, () => transfer(ctx, {
    label,
    final,
    source: label,
    ...(etag !== undefined ? { validator: etag } : {}),
    ...(head.ContentLength !== undefined ? { expectedSize: head.ContentLength } : {}),
    ...(sha256 ? { sha256 } : {}),
    open: async (offset: number) => {
      let out: S3Get
      try {
        out = await client.send(new GetObjectCommand({
          Bucket: bucket, Key: key, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}), ...(etag ? { IfMatch: etag } : {}),
        })) as S3Get
      } catch (err) {
        const status = s3Status(err)
        if (status === 412) throw new RemotePartError('interrupted', `${label}: the object changed during the download`, { status, retryable: true })
        throw new RemotePartError(status === undefined ? 'network' : 'http', `${label}: ${describe(err)}`,
          { ...(status ? { status } : {}), retryable: status === undefined || status >= 500, cause: err })
      }
      const range = parseContentRange(out.ContentRange ?? null)
      const start = offset > 0 && range?.start === offset ? offset : 0
      return { start, body: out.Body as AsyncIterable<Uint8Array> }
    },
  }))
}

// ---------------------------------------------------------------- entry points

/** Fetches one part into the cache (or finds it there) and returns its local path. */
export async function fetchPart(ref: string, opts: FetchPartOptions): Promise<FetchedPart> {
  const p = parsePartUrl(ref)
  const ctx = context(opts)
  if (p.kind === 'hf') return fetchHf(ctx, p, ref)
  if (p.kind === 'https') {
    return fetchHttpsTo(ctx, p.url, p.sha256, join(ctx.cacheDir, 'https', sha256Hex(p.url), basenameOf(p.url)), redact(p.url))
  }
  return fetchS3To(ctx, opts.s3, p.bucket, p.key, p.sha256, join(ctx.cacheDir, 's3', p.bucket, ...p.key.split('/')), `s3://${p.bucket}/${p.key}`)
}

/**
 * Fetches named files under one folder ref into one local folder (e.g. an SAELens SAE: cfg.json +
 * sae_weights.safetensors). For hf:// the revision is resolved once and every file comes from that commit.
 */
export async function fetchFolder(ref: string, files: string[], opts: FetchPartOptions): Promise<{ dir: string; revision?: string; files: FetchedPart[] }> {
  const p = parseRef(ref, true)
  if (files.length === 0) throw badRef(ref, 'no files named for the folder')
  for (const f of files) checkRelPath(ref, f, 'file')
  const ctx = context(opts)
  const out: FetchedPart[] = []
  if (p.kind === 'hf') {
    const under = (f: string) => (p.path ? `${p.path}/${f}` : f)
    const first = await fetchHf(ctx, { ...p, path: under(files[0]) }, hfRef(p, p.revision, under(files[0])))
    const commit = first.revision!
    out.push(first)
    for (const f of files.slice(1)) {
      out.push(await fetchHf(ctx, { ...p, revision: commit, path: under(f) }, hfRef(p, commit, under(f))))
    }
    return { dir: join(hfRoot(ctx, p), commit, ...(p.path ? p.path.split('/') : [])), revision: commit, files: out }
  }
  if (p.kind === 'https') {
    const base = p.url.replace(/\/+$/, '')
    const dir = join(ctx.cacheDir, 'https', sha256Hex(`${base}/`))
    for (const f of files) {
      const url = `${base}/${f.split('/').map(encodeURIComponent).join('/')}`
      out.push(await fetchHttpsTo(ctx, url, undefined, join(dir, ...f.split('/')), redact(url)))
    }
    return { dir, files: out }
  }
  const dir = join(ctx.cacheDir, 's3', p.bucket, ...p.key.split('/'))
  for (const f of files) {
    const key = `${p.key}/${f}`
    out.push(await fetchS3To(ctx, opts.s3, p.bucket, key, undefined, join(dir, ...f.split('/')), `s3://${p.bucket}/${key}`))
  }
  return { dir, files: out }
}
