/**
 * @module Fetching URLs that strangers give us (dataset sources, webhooks) without letting them reach inside: only
 * http(s); every hop's resolved addresses checked (loopback, private, link-local, cloud metadata, CGNAT, IPv6
 * equivalents, IPv4-mapped and NAT64 forms) at connect time, so DNS rebinding cannot swap the address after the
 * check; redirects followed by hand and checked the same way; caps on bytes and time. Node only (node:http).
 */
import http from 'node:http'
import https from 'node:https'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { Transform, type Readable } from 'node:stream'

export class RefusedUrlError extends Error {
  constructor(
    message: string,
    readonly code: 'scheme' | 'address' | 'redirect' | 'size' | 'timeout' | 'credentials'
  ) {
    super(message)
    this.name = 'RefusedUrlError'
  }
}

const v4 = (ip: string): number => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0
const inV4 = (ip: number, base: string, bits: number): boolean =>
  bits === 0 || ip >>> (32 - bits) === v4(base) >>> (32 - bits)

/** IPv4 blocks no request from outside may reach, with why (RFC 6890 special-purpose registry, plus metadata). */
const V4_BLOCKS: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved']
]

/** The 8 groups of an IPv6 address (with an embedded IPv4 tail expanded), or null when it does not parse. */
function v6Groups(ip: string): number[] | null {
  let s = ip.toLowerCase().replace(/%.*$/, '') // zone index
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (tail) {
    const n = v4(tail[1])
    s = s.slice(0, -tail[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
  }
  const [head, rest] = s.split('::')
  const a = head ? head.split(':') : []
  const b = rest !== undefined && rest !== '' ? rest.split(':') : []
  if (rest === undefined && a.length !== 8) return null
  const fill = 8 - a.length - b.length
  if (fill < 0) return null
  const groups = [...a, ...new Array(rest === undefined ? 0 : fill).fill('0'), ...b].map(g => parseInt(g, 16))
  return groups.length === 8 && groups.every(g => g >= 0 && g <= 0xffff) ? groups : null
}

/** Why an address must not be reached from user-supplied URLs, or null when it is a public unicast address. */
export function forbiddenAddress(ip: string): string | null {
  const family = isIP(ip)
  if (family === 4) {
    const n = v4(ip)
    for (const [base, bits, why] of V4_BLOCKS) if (inV4(n, base, bits)) return why
    return n === 0xffffffff ? 'broadcast' : null
  }
  if (family !== 6) return 'not an IP address'
  const g = v6Groups(ip)
  if (!g) return 'not an IP address'
  const embedded = (hi: number, lo: number) => `${hi >>> 8}.${hi & 255}.${lo >>> 8}.${lo & 255}`
  if (g.every(x => x === 0)) return 'unspecified'
  if (g.slice(0, 7).every(x => x === 0) && g[7] === 1) return 'loopback'
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64): judged by the IPv4 inside.
  if (g.slice(0, 5).every(x => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    const why = forbiddenAddress(embedded(g[6], g[7]))
    return why ? `IPv4-mapped ${why}` : null
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every(x => x === 0)) {
    const why = forbiddenAddress(embedded(g[6], g[7]))
    return why ? `NAT64 ${why}` : null
  }
  if ((g[0] & 0xfe00) === 0xfc00) return 'unique local (private)'
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local'
  if ((g[0] & 0xffc0) === 0xfec0) return 'site-local'
  if ((g[0] & 0xff00) === 0xff00) return 'multicast'
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'documentation'
  if (g[0] === 0x2002) return '6to4 (may embed a private IPv4)'
  if (g[0] === 0x2001 && g[1] === 0) return 'Teredo'
  if (g[0] === 0xfd00 && g[1] === 0x0ec2) return 'cloud metadata (AWS IPv6)'
  return null
}

export interface GuardOptions {
  /** Total bytes of the body (default 1 GiB). */
  maxBytes?: number
  /** Until the response headers arrive, redirects included (default 30 s). */
  timeoutMs?: number
  /** Longest silence between two chunks of the body (default 60 s): large bodies may take long, stalls may not. */
  idleTimeoutMs?: number
  maxRedirects?: number
  /** false: a 3xx is returned as the answer instead of followed (webhooks never follow redirects). */
  followRedirects?: boolean
  /** Addresses to allow despite the rules (tests, or a deployment's own private services): return true to allow. */
  allowAddress?: (ip: string) => boolean
  /** DNS resolution (tests inject one); default node:dns lookup, all addresses. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>
  method?: 'GET' | 'POST' | 'HEAD'
  headers?: Record<string, string>
  body?: Uint8Array | string
  signal?: AbortSignal
}

export interface GuardedResponse {
  status: number
  headers: http.IncomingHttpHeaders
  /** The URL finally answered (after redirects). */
  url: string
  /** The body, capped at maxBytes (the stream errors with RefusedUrlError past it). */
  body: Readable
}

const defaultResolve = (hostname: string) =>
  new Promise<LookupAddress[]>((ok, fail) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? fail(err) : ok(addresses)))
  )

/** Checks a URL's form before any network use: scheme and embedded credentials. */
export function checkUrlForm(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new RefusedUrlError(`not a valid URL: ${raw}`, 'scheme')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RefusedUrlError(`only http(s) URLs are fetched, not ${url.protocol}`, 'scheme')
  if (url.username || url.password)
    throw new RefusedUrlError(
      'URLs with embedded credentials are refused: send a token in a header instead',
      'credentials'
    )
  return url
}

/**
 * One request (following up to maxRedirects redirects), every hop checked. The connection uses the very addresses
 * that were checked: the lookup given to node:http is the checking one.
 */
export async function guardedRequest(raw: string, o: GuardOptions = {}): Promise<GuardedResponse> {
  const resolve = o.resolve ?? defaultResolve
  const maxRedirects = o.maxRedirects ?? 5
  const deadline = Date.now() + (o.timeoutMs ?? 30_000)
  let url = checkUrlForm(raw)
  let method = o.method ?? 'GET'
  let body = o.body
  const headers = { ...(o.headers ?? {}) }
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(url, method, headers, body, resolve, o, deadline)
    const location = res.headers.location
    if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && o.followRedirects !== false) {
      res.resume()
      if (hop >= maxRedirects) throw new RefusedUrlError(`more than ${maxRedirects} redirects from ${raw}`, 'redirect')
      const next = checkUrlForm(new URL(location, url).toString())
      // Credentials meant for one origin are not carried to another.
      if (next.origin !== url.origin) {
        delete headers.authorization
        delete headers.Authorization
        delete headers.cookie
      }
      if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
        method = 'GET'
        body = undefined
      }
      url = next
      continue
    }
    return {
      status: res.statusCode ?? 0,
      headers: res.headers,
      url: url.toString(),
      body: capped(res, o.maxBytes ?? 2 ** 30, o.idleTimeoutMs ?? 60_000, url)
    }
  }
}

function requestOnce(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | string | undefined,
  resolve: (h: string) => Promise<LookupAddress[]>,
  o: GuardOptions,
  deadline: number
): Promise<http.IncomingMessage> {
  return new Promise((ok, fail) => {
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const check = (ip: string): void => {
      if (o.allowAddress?.(ip)) return
      const why = forbiddenAddress(ip)
      if (why) throw new RefusedUrlError(`${url.host} resolves to ${ip} (${why}): refused`, 'address')
    }
    // IP literals never reach the lookup hook: check them here.
    try {
      if (isIP(host)) check(host)
    } catch (err) {
      fail(err)
      return
    }
    const lookup = (
      hostname: string,
      options: unknown,
      cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void
    ) => {
      resolve(hostname)
        .then(addresses => {
          if (!addresses.length) throw new Error(`${hostname} has no address`)
          for (const a of addresses) check(a.address) // every address: a round-robin set must not hide a private one
          if ((options as { all?: boolean })?.all) cb(null, addresses)
          else cb(null, addresses[0].address, addresses[0].family)
        })
        .catch((err: Error) => cb(err, ''))
    }
    const remaining = deadline - Date.now()
    if (remaining <= 0) {
      fail(new RefusedUrlError(`timed out fetching ${url}`, 'timeout'))
      return
    }
    const lib = url.protocol === 'https:' ? https : http
    // The deadline runs until the headers arrive; the body is then watched for silence (capped()).
    const timer = setTimeout(
      () => req.destroy(new RefusedUrlError(`timed out waiting for ${url.host} to answer`, 'timeout')),
      remaining
    )
    timer.unref()
    // agent: false: no pooled keep-alive sockets, so a connection is never reused for a host checked under another name.
    const req = lib.request(url, { method, headers, lookup: lookup as never, signal: o.signal, agent: false }, res => {
      clearTimeout(timer)
      ok(res)
    })
    req.on('error', err => {
      clearTimeout(timer)
      fail(err)
    })
    req.end(body)
  })
}

function capped(res: http.IncomingMessage, maxBytes: number, idleMs: number, url: URL): Readable {
  const declared = Number(res.headers['content-length'])
  let seen = 0
  let idle: NodeJS.Timeout | undefined
  const arm = () => {
    clearTimeout(idle)
    idle = setTimeout(
      () => res.destroy(new RefusedUrlError(`timed out: ${url.host} sent no data for ${idleMs / 1000} s`, 'timeout')),
      idleMs
    )
    idle.unref()
  }
  arm()
  const guard = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm()
      seen += chunk.length
      if (seen > maxBytes) done(new RefusedUrlError(`${url.host} sent more than ${maxBytes} bytes`, 'size'))
      else done(null, chunk)
    },
    flush(done) {
      clearTimeout(idle)
      done()
    }
  })
  guard.on('close', () => clearTimeout(idle))
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy()
    process.nextTick(() =>
      guard.destroy(new RefusedUrlError(`${url.host} declares ${declared} bytes, over the ${maxBytes} limit`, 'size'))
    )
    return guard
  }
  res.on('error', err => guard.destroy(err))
  return res.pipe(guard)
}

/** The whole body as bytes (small answers: webhook replies, manifests), with the same caps. */
export async function readAll(body: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(c as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}

/**
 * A fetch for callers written against the Fetch API (webhook delivery) that goes through the guard. Enough of fetch
 * for a request with a string or byte body: the answer is a Response with status, headers and body; redirects are
 * returned, not followed, when the caller asks `redirect: 'manual'`.
 */
export function guardedFetch(
  guard: Omit<GuardOptions, 'method' | 'headers' | 'body' | 'signal' | 'followRedirects'> = {}
): typeof globalThis.fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v
    })
    const body =
      typeof init.body === 'string' || init.body instanceof Uint8Array
        ? init.body
        : init.body == null
          ? undefined
          : String(init.body)
    const res = await guardedRequest(url, {
      ...guard,
      method: (init.method ?? 'GET') as GuardOptions['method'],
      headers,
      body,
      signal: init.signal ?? undefined,
      followRedirects: init.redirect !== 'manual'
    })
    const out = new Headers()
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v)
    const bytes = await readAll(res.body)
    return new Response(
      res.status === 204 || res.status === 304 ? null : new Blob([bytes as Uint8Array<ArrayBuffer>]),
      { status: res.status, headers: out }
    )
  }) as typeof globalThis.fetch
}
