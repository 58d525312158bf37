/** @module Test kit: a fake Hugging Face hub on loopback (resolve URLs, LFS redirects to a CDN on another port, ranges, gated repos, cut connections). */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface HubFile {
  content: Uint8Array
  /** Stored in LFS: the resolve URL answers 302 to the CDN with X-Linked-Etag / X-Linked-Size. */
  lfs?: boolean
  /** A digest the hub advertises instead of the real one (a corrupted blob, for checksum tests). */
  claimedSha256?: string
  /** An ETag the hub sends instead of the file's git blob id (a file not in LFS), for checksum tests. */
  claimedEtag?: string
}

export interface HubRepo {
  /** commit sha (40 hex) -> path -> file */
  commits: Record<string, Record<string, HubFile>>
  /** branch or tag -> commit sha; move a branch by assigning to it. */
  refs: Record<string, string>
  /** A gated repo: only `Authorization: Bearer <token>` gets in (401 without a token, 403 with another). */
  token?: string
}

export interface HubRequest {
  server: 'hub' | 'cdn'
  method: string
  path: string
  authorization?: string
  range?: string
  status: number
  /** Body bytes actually written to the socket. */
  bodyBytes: number
}

export interface FakeHub {
  /** The hub's origin, for HF_ENDPOINT. */
  endpoint: string
  /** The CDN's origin: another port, so another host as far as the token rule is concerned. */
  cdn: string
  /** Repos by `owner/name` (datasets under `datasets/owner/name`); edit freely between calls. */
  repos: Record<string, HubRepo>
  requests: HubRequest[]
  /**
   * The next GET body (hub or CDN) stops after `afterBytes` bytes and its connection is destroyed once `dropWhen`
   * settles: the test says when the client has taken those bytes, since a fetch body stream that errors discards the
   * chunks it has queued but not yet handed out (a fixed pause loses them on a busy machine).
   */
  cutNextBody(afterBytes: number, dropWhen: () => Promise<unknown>): void
  /** Serves `content` at `path` on the CDN server (for plain https:// parts); returns its URL. */
  serve(path: string, content: Uint8Array, headers?: Record<string, string>): string
  close(): Promise<void>
}

export function sha256Of(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The id git gives a blob, which the hub sends as the ETag of a file not in LFS. */
export function gitBlobId(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex')
}

/** A deterministic fake commit sha. */
export function fakeCommit(seed: string): string {
  return createHash('sha1').update(`commit ${seed}`).digest('hex')
}

/** Deterministic pseudo-random bytes (not compressible, unlike a repeated pattern). */
export function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'bad' | undefined {
  if (!header) return undefined
  const m = /^bytes=(\d+)-(\d*)$/.exec(header)
  if (!m) return undefined
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return 'bad'
  return { start, end }
}

export async function startFakeHub(repos: Record<string, HubRepo>): Promise<FakeHub> {
  const requests: HubRequest[] = []
  const statics = new Map<string, { content: Uint8Array; headers: Record<string, string> }>()
  let cut: { after: number; dropWhen: () => Promise<unknown> } | undefined

  const log = (server: 'hub' | 'cdn', req: IncomingMessage, status: number, bodyBytes: number): void => {
    const auth = req.headers.authorization
    const range = req.headers.range
    requests.push({
      server,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      status,
      bodyBytes,
      ...(auth ? { authorization: auth } : {}),
      ...(range ? { range } : {})
    })
  }

  /** Sends a body with range support, honouring the cut switch. */
  const sendBody = (
    server: 'hub' | 'cdn',
    req: IncomingMessage,
    res: ServerResponse,
    content: Uint8Array,
    headers: Record<string, string>
  ): void => {
    const range = parseRange(req.headers.range, content.byteLength)
    if (range === 'bad') {
      res.writeHead(416, { 'content-range': `bytes */${content.byteLength}` })
      res.end()
      log(server, req, 416, 0)
      return
    }
    const slice = range ? content.subarray(range.start, range.end + 1) : content
    const status = range ? 206 : 200
    // `transfer-encoding: chunked` in a route's headers serves it without announcing its size.
    const chunked = headers['transfer-encoding'] === 'chunked'
    res.writeHead(status, {
      ...headers,
      'accept-ranges': 'bytes',
      ...(chunked ? {} : { 'content-length': String(slice.byteLength) }),
      ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${content.byteLength}` } : {})
    })
    if (req.method === 'HEAD') {
      res.end()
      log(server, req, status, 0)
      return
    }
    if (cut !== undefined && cut.after < slice.byteLength) {
      const { after: n, dropWhen } = cut
      cut = undefined
      log(server, req, status, n)
      // The drop waits until the client has taken what arrived (see cutNextBody).
      const drop = (): void => {
        res.socket?.destroy()
      }
      res.write(slice.subarray(0, n), () => {
        dropWhen().then(drop, drop)
      })
      return
    }
    log(server, req, status, slice.byteLength)
    res.end(slice)
  }

  const blobFor = (key: string): Uint8Array | undefined => {
    for (const repo of Object.values(repos)) {
      for (const files of Object.values(repo.commits)) {
        for (const f of Object.values(files))
          if (f.lfs && (f.claimedSha256 ?? sha256Of(f.content)) === key) return f.content
      }
    }
    return undefined
  }

  const cdnServer = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(path)
    const content = blob ? blobFor(blob[1]) : statics.get(path)?.content
    if (!content) {
      res.writeHead(404)
      res.end('not found')
      log('cdn', req, 404, 0)
      return
    }
    sendBody(
      'cdn',
      req,
      res,
      content,
      blob ? { 'content-type': 'application/octet-stream' } : statics.get(path)!.headers
    )
  })

  let cdnOrigin = ''
  const error = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    code: string,
    extra: Record<string, string> = {}
  ): void => {
    res.writeHead(status, {
      'x-error-code': code,
      'x-error-message': code,
      'content-type': 'application/json',
      ...extra
    })
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: code }))
    log('hub', req, status, 0)
  }

  const hubServer = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const m = /^\/((?:datasets\/)?[^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path)
    if (!m) {
      error(req, res, 404, 'NotFound')
      return
    }
    const repoId = m[1]
    const rev = decodeURIComponent(m[2])
    const file = m[3].split('/').map(decodeURIComponent).join('/')
    const repo = repos[repoId]
    const auth = req.headers.authorization
    if (!repo) {
      error(req, res, auth ? 404 : 401, 'RepoNotFound')
      return
    }
    if (repo.token !== undefined && auth !== `Bearer ${repo.token}`) {
      error(req, res, auth ? 403 : 401, 'GatedRepo')
      return
    }
    const commit = repo.refs[rev] ?? (repo.commits[rev] ? rev : undefined)
    if (!commit || !repo.commits[commit]) {
      error(req, res, 404, 'RevisionNotFound')
      return
    }
    const entry = repo.commits[commit][file]
    if (!entry) {
      error(req, res, 404, 'EntryNotFound', { 'x-repo-commit': commit })
      return
    }
    if (entry.lfs) {
      const sha = entry.claimedSha256 ?? sha256Of(entry.content)
      res.writeHead(302, {
        location: `${cdnOrigin}/blobs/${sha}?X-Amz-Signature=fake&Expires=1`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${sha}"`,
        'x-linked-size': String(entry.content.byteLength),
        etag: `"${sha}"`,
        'content-length': '0'
      })
      res.end()
      log('hub', req, 302, 0)
      return
    }
    sendBody('hub', req, res, entry.content, {
      'x-repo-commit': commit,
      etag: `"${entry.claimedEtag ?? gitBlobId(entry.content)}"`,
      'content-type': 'application/octet-stream'
    })
  })

  const listen = async (server: Server): Promise<string> => {
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const endpoint = await listen(hubServer)
  cdnOrigin = await listen(cdnServer)
  const close = (server: Server) =>
    new Promise<void>(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    })

  return {
    endpoint,
    cdn: cdnOrigin,
    repos,
    requests,
    cutNextBody(afterBytes, dropWhen) {
      cut = { after: afterBytes, dropWhen }
    },
    serve(path, content, headers = { 'content-type': 'application/octet-stream' }) {
      statics.set(path, { content, headers })
      return `${cdnOrigin}${path}`
    },
    async close() {
      await Promise.all([close(hubServer), close(cdnServer)])
    }
  }
}
