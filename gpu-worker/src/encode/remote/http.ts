/** @module http(s) transport: redirects followed by hand (the hub token never leaves the hub's host) and ranged GETs for the resumable transfer. */
import type { Ctx } from './cache.ts'
import { RemotePartError, SHA256 } from './refs.ts'
import { describe, isAbort, readerChunks, type Opened, type Transfer } from './transfer.ts'

export interface Sent {
  res: Response
  url: string
}

/**
 * A request that follows redirects itself: the token goes only to the hub's host, never to a CDN it redirects to.
 * With `stopOffHost`, a redirect to another host is returned rather than followed (the hub's LFS redirect).
 */
export async function send(
  ctx: Ctx,
  method: string,
  url: string,
  headers: Record<string, string>,
  opts: { stopOffHost?: boolean; signal?: AbortSignal } = {}
): Promise<Sent> {
  let current = url
  for (let hop = 0; hop <= 10; hop++) {
    const h: Record<string, string> = { 'accept-encoding': 'identity', ...headers }
    if (ctx.token && new URL(current).host === ctx.hubHost) h.authorization = `Bearer ${ctx.token}`
    let res: Response
    try {
      res = await ctx.fetch(current, { method, headers: h, redirect: 'manual', signal: opts.signal ?? ctx.signal })
    } catch (err) {
      if (isAbort(err, ctx.signal)) throw err
      throw new RemotePartError('network', `cannot reach ${new URL(current).host}: ${describe(err)}`, {
        retryable: true,
        cause: err
      })
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

export function redact(url: string): string {
  const u = new URL(url)
  u.search = ''
  return u.href
}

/** The hub's ETag forms: `W/"..."` or `"..."` around the id. */
export function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

export function quotedSha256(etag: string | null): string | undefined {
  const e = normalizeEtag(etag)?.toLowerCase()
  return e && SHA256.test(e) ? e : undefined
}

export function parseContentRange(v: string | null): { start: number; total?: number } | undefined {
  const m = v ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(v.trim()) : null
  if (!m) return undefined
  return { start: Number(m[1]), ...(m[2] !== '*' ? { total: Number(m[2]) } : {}) }
}

/** A ranged GET of an http(s) source for `transfer`. */
export function httpOpener(ctx: Ctx, url: string, label: string): Transfer['open'] {
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
      throw new RemotePartError(
        res.status >= 500
          ? 'http'
          : res.status === 404
            ? 'not-found'
            : res.status === 401 || res.status === 403
              ? 'auth'
              : 'http',
        `${label}: ${redact(at)} answered ${res.status} ${res.statusText}`,
        { status: res.status, retryable: res.status >= 500 || res.status === 429 }
      )
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
    return {
      start,
      ...(total !== undefined ? { total } : {}),
      ...(etag ? { validator: etag } : {}),
      ...(sha256 ? { sha256 } : {}),
      body: readerChunks(res.body)
    }
  }
  return openAt
}
