/** @module Encoder part refs (hf://owner/repo[@revision]/path, https://...[#sha256=], s3://bucket/key): their parsing and the fetch error type. */

export type PartUrl =
  | { kind: 'hf'; repo: string; revision: string; path: string; repoType?: 'dataset' }
  | { kind: 'https'; url: string; sha256?: string }
  | { kind: 's3'; bucket: string; key: string; sha256?: string }

export type RemotePartErrorCode =
  | 'bad-ref'
  | 'auth'
  | 'not-found'
  | 'checksum'
  | 'too-large'
  | 'network'
  | 'http'
  | 'interrupted'
  | 'no-client'

/** A part that cannot be fetched; the message is for the user who wrote the ref. */
export class RemotePartError extends Error {
  readonly code: RemotePartErrorCode
  readonly status?: number
  /** A transfer that may succeed when resumed (network failures, 5xx, a body cut short). */
  readonly retryable: boolean
  constructor(
    code: RemotePartErrorCode,
    message: string,
    opts: { status?: number; retryable?: boolean; cause?: unknown } = {}
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'RemotePartError'
    this.code = code
    this.retryable = opts.retryable ?? false
    if (opts.status !== undefined) this.status = opts.status
  }
}

export const COMMIT = /^[0-9a-f]{40}$/
export const SHA256 = /^[0-9a-f]{64}$/
export const SHA1 = /^[0-9a-f]{40}$/
// The hub's own rule for owner and repo names; `--` and `..` are forbidden there, which keeps `owner--name` unambiguous.
export const HUB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/
export const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export function isRemotePart(ref: string): boolean {
  return /^(hf|s3|https?):\/\//i.test(ref)
}

export function badRef(ref: string, problem: string): RemotePartError {
  return new RemotePartError('bad-ref', `bad encoder part ref ${JSON.stringify(ref)}: ${problem}`)
}

/** Checks a relative path inside a repo, bucket or folder: the cache mirrors it on disk, so it must not climb out. */
export function checkRelPath(ref: string, path: string, what: string): void {
  if (path.includes('\\') || path.includes('\0'))
    throw badRef(ref, `${what} ${JSON.stringify(path)} contains a backslash or NUL`)
  for (const seg of path.split('/')) {
    if (seg === '')
      throw badRef(ref, `${what} ${JSON.stringify(path)} has an empty segment (leading, trailing or double slash)`)
    if (seg === '.' || seg === '..') throw badRef(ref, `${what} ${JSON.stringify(path)} has a "${seg}" segment`)
  }
}

export function sha256Fragment(ref: string, hash: string): string | undefined {
  if (hash === '') return undefined
  const m = /^#sha256=([0-9a-fA-F]{64})$/.exec(hash)
  if (!m) throw badRef(ref, `the fragment must be #sha256=<64 hex digits>, got ${JSON.stringify(hash)}`)
  return m[1].toLowerCase()
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Parses an encoder part ref; throws a RemotePartError naming the problem when it is malformed. */
export function parsePartUrl(ref: string): PartUrl {
  return parseRef(ref, false)
}

export function parseRef(ref: string, folder: boolean): PartUrl {
  if (typeof ref !== 'string' || ref === '') throw badRef(String(ref), 'empty')
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(ref)?.[1]?.toLowerCase()
  if (scheme === 'hf') {
    let rest = ref.slice(5)
    let repoType: 'dataset' | undefined
    if (rest.startsWith('datasets/')) {
      repoType = 'dataset'
      rest = rest.slice(9)
    }
    const segs = rest.split('/')
    if (segs.length < 2 || (!folder && segs.length < 3)) throw badRef(ref, 'expected hf://owner/repo[@revision]/path')
    const owner = segs[0]
    const at = segs[1].indexOf('@')
    const name = at < 0 ? segs[1] : segs[1].slice(0, at)
    let revision = 'main'
    if (at >= 0) {
      try {
        revision = decodeURIComponent(segs[1].slice(at + 1))
      } catch {
        throw badRef(ref, 'the revision is not valid percent-encoding')
      }
      if (revision === '') throw badRef(ref, 'empty revision after "@"')
    }
    for (const [what, v] of [
      ['owner', owner],
      ['repo name', name]
    ] as const) {
      if (!HUB_NAME.test(v) || v.includes('--') || v.includes('..')) {
        throw badRef(
          ref,
          `${what} ${JSON.stringify(v)} is not a valid Hugging Face name (letters, digits, . _ -; no "--" or "..")`
        )
      }
    }
    const path = segs.slice(2).join('/')
    if (path !== '' || !folder) checkRelPath(ref, path, 'path')
    return { kind: 'hf', repo: `${owner}/${name}`, revision, path, ...(repoType ? { repoType } : {}) }
  }
  if (scheme === 'https' || scheme === 'http') {
    let u: URL
    try {
      u = new URL(ref)
    } catch {
      throw badRef(ref, 'not a valid URL')
    }
    if (u.protocol === 'http:' && !isLoopback(u.hostname))
      throw badRef(ref, 'plain http is only allowed on loopback; use https')
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
  throw badRef(
    ref,
    scheme ? `unsupported scheme "${scheme}://" (use hf://, https:// or s3://)` : 'expected hf://, https:// or s3://'
  )
}
