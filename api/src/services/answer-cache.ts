/**
 * @module Answers over ready datasets are cached where they are asked. A ready dataset changes only by a new version
 * (an append; the ETag covers the version read) or a delete (a tombstone for good; ids are never reused), so a GET
 * answer over ready datasets is a pure function of the
 * datasets' manifests, the encoder's labels version, the tenant's label overlay, the normalized query and the deployment: a strong ETag is a
 * digest of exactly these, `If-None-Match` gets a 304, and a bounded in-process LRU keeps the answers' bytes.
 * Every request still loads the datasets (record, tombstone, manifest) before anything is served, so a deleted
 * dataset answers 404 from any process, whatever its cache holds; a DELETE also purges this process's LRU.
 */
import type { Context, TypedResponse } from 'hono'
import type { JSONParsed } from 'hono/utils/types'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { readLabelOverlay } from '@latentbase/shared/catalog/label-overlay'
import { loadReadyDataset } from './ready-dataset.ts'
import { parseDatasetRef } from '@latentbase/shared/contract/versions'
import { hasNewerVersion, versionOf } from '@latentbase/shared/store/versions'

interface Entry {
  body: string
  bytes: number
  datasets: string[]
}

/** A bounded LRU of answer bodies by ETag (least recently used evicted past maxEntries or maxBytes). */
export class AnswerCache {
  private readonly entries = new Map<string, Entry>()
  /** Answers being computed: concurrent requests for the same one wait for it rather than compute it again. */
  readonly inflight = new Map<string, Promise<string>>()
  /**
   * What the ETag needs of each ready dataset (tenant/id or tenant/id@N -> its part of the tag). A ready dataset changes
   * only by being deleted (its tombstone is written first) or by a new version (whose versions/NNNNN.json is written
   * before manifest.json switches): with this, a request checks the tombstone and the next version's manifest (two
   * HEADs in parallel; a pinned id@N only the tombstone) instead of reading and validating the record and manifest.
   */
  readonly readyDatasets = new Map<string, string>()
  private bytes = 0
  hits = 0
  misses = 0

  constructor(
    readonly maxEntries = 1024,
    readonly maxBytes = 64 * 1024 * 1024
  ) {}

  get(etag: string): string | undefined {
    const e = this.entries.get(etag)
    if (!e) {
      this.misses++
      return undefined
    }
    this.hits++
    // Re-insert: a Map iterates in insertion order, so the first key is always the least recently used.
    this.entries.delete(etag)
    this.entries.set(etag, e)
    return e.body
  }

  /** `datasets` are "tenant/id" of the datasets the answer read, for purging. */
  set(etag: string, body: string, datasets: string[]): void {
    const bytes = body.length * 2
    if (bytes > this.maxBytes / 4) return // one answer must not flush the rest
    this.delete(etag)
    this.entries.set(etag, { body, bytes, datasets })
    this.bytes += bytes
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes)
      this.delete(this.entries.keys().next().value!)
  }

  /** Drop every answer that read this dataset. */
  purgeDataset(tenant: string, id: string): number {
    const key = `${tenant}/${id}`
    this.readyDatasets.delete(key)
    // Versioned references (ds_1@2) read the same dataset.
    const reads = (d: string) => d === key || d.startsWith(`${key}@`)
    for (const k of [...this.readyDatasets.keys()]) if (k.startsWith(`${key}@`)) this.readyDatasets.delete(k)
    let n = 0
    for (const [etag, e] of this.entries)
      if (e.datasets.some(reads)) {
        this.delete(etag)
        n++
      }
    return n
  }

  get size(): number {
    return this.entries.size
  }
  get byteSize(): number {
    return this.bytes
  }

  private delete(etag: string): void {
    const e = this.entries.get(etag)
    if (!e) return
    this.entries.delete(etag)
    this.bytes -= e.bytes
  }
}

/** The caching side of the app's dependencies (createApp fills answerCache in). */
export function answerDepsOf(
  deps: {
    objects: ObjectStore
    datasets: DatasetStore
    answerCache?: AnswerCache | false
    apiKeys?: unknown
    version?: string
    encoders?: Pick<EncoderCatalog, 'get'>
  },
  embedderId = ''
): CachedAnswerDeps {
  return {
    objects: deps.objects,
    datasets: deps.datasets,
    encoders: deps.encoders,
    answerCache: deps.answerCache,
    keysRequired: Boolean(deps.apiKeys),
    deployment: `${deps.version ?? ''}|${embedderId}`
  }
}

export interface CachedAnswerDeps {
  objects: ObjectStore
  datasets: DatasetStore
  /** Where the encoders' labels versions come from (re-imported labels keep the fingerprint but change answers). */
  encoders?: Pick<EncoderCatalog, 'get'>
  /** false: no in-process cache (ETags and 304s still apply). */
  answerCache?: AnswerCache | false
  /** API keys are required: answers are `private` (no shared cache stores them) and vary on the key headers. */
  keysRequired: boolean
  /** Changes whenever the code or configuration could change an answer (version, embedder). */
  deployment: string
}

/** What one answer depends on: the route, the tenant, the datasets (with the error role of each) and the query as validated. */
export interface AnswerScope {
  route: string
  tenant: string
  datasets: Array<{ id: string; role: string }>
  query: unknown
}

/** JSON with object keys sorted at every level (the query after zod: defaults filled in, so equal queries are equal). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

async function sha256(text: string): Promise<string> {
  // Web Crypto: the same code in Node, workerd and Lambda.
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  let s = ''
  for (const b of digest) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * The strong ETag of an answer. Loading the datasets here gives the usual 404 / 409 before anything is served.
 * The version and the manifest digest change when a version is appended; the encoder's labels version when its labels
 * are re-imported; the overlay signature when a tenant's labels are rewritten.
 */
export async function answerETag(deps: CachedAnswerDeps, scope: AnswerScope): Promise<string> {
  const known = deps.answerCache ? deps.answerCache.readyDatasets : null
  const parts = await Promise.all(
    scope.datasets.map(async ({ id, role }) => {
      const key = `${scope.tenant}/${id}`
      let part = known?.get(key)
      let fingerprint: string
      let encoder: string
      const ref = parseDatasetRef(id)
      // The memo holds while the dataset is not deleted and, for its latest version, no newer version was committed.
      if (
        part !== undefined &&
        ref &&
        !(
          await Promise.all([
            deps.datasets.isTombstoned(scope.tenant, ref.id),
            ref.version === undefined &&
              hasNewerVersion(deps.objects, scope.tenant, ref.id, Number(part.split('\u0000')[2]))
          ])
        ).some(Boolean)
      ) {
        fingerprint = part.slice(0, part.indexOf('\u0000'))
        encoder = part.slice(part.lastIndexOf('\u0000') + 1)
      } else {
        // First sight, or tombstoned: the full load (which gives the 404 / 409).
        const ds = await loadReadyDataset(deps.datasets, scope.tenant, id, role)
        fingerprint = ds.manifest.encoderFingerprint
        encoder = ds.record.encoder
        // The manifest digest over plain JSON.stringify, not canonical(): a stored manifest is written once and parsed
        // by the same schema, so its key order is fixed; any change in it still changes the string (canonical() took
        // ~15 ms of CPU at 100k documents, a 40 KB manifest, on every route's first call).
        part = `${fingerprint}\u0000${ds.record.createdAt}\u0000${versionOf(ds.manifest)}\u0000${await sha256(JSON.stringify(ds.manifest))}\u0000${encoder}`
        if (known) {
          known.set(key, part)
          if (known.size > 4096) known.delete(known.keys().next().value!)
        }
      }
      const overlay = await readLabelOverlay(deps.objects, scope.tenant, fingerprint).then(
        o => o.signature,
        () => ''
      )
      return [id, part, deps.encoders?.get(encoder)?.labelsVersion ?? '', overlay]
    })
  )
  return `"${await sha256(canonical({ v: 1, deployment: deps.deployment, route: scope.route, tenant: scope.tenant, query: scope.query, datasets: parts }))}"`
}

/** Does an If-None-Match header match this ETag (weak comparison, as RFC 9110 asks for If-None-Match)? */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header.split(',').some(t => {
    const tag = t.trim()
    return tag === '*' || tag.replace(/^W\//, '') === etag
  })
}

/** Cache-Control and Vary of cacheable answers. Always revalidated (no-cache), so a delete shows at once. */
export function cachingHeaders(keysRequired: boolean): Record<string, string> {
  return keysRequired
    ? // A shared cache (CDN) must never hand one tenant's answer to another: private, and varying on the key headers
      // for any cache that ignores `private`. Browsers keep it and revalidate with If-None-Match.
      { 'Cache-Control': 'private, no-cache', Vary: 'Authorization, x-api-key' }
    : // One tenant (local mode): any cache may store it; no-cache makes it ask again each time (a 304 when unchanged).
      { 'Cache-Control': 'public, no-cache' }
}

/**
 * Answer a GET over ready datasets: 304 when If-None-Match holds the ETag, the LRU's bytes when it has them, else
 * `compute()` (stored for next time). Every answer carries the ETag and the caching headers.
 */
export async function cachedJson<T>(
  c: Context,
  deps: CachedAnswerDeps,
  scope: AnswerScope,
  compute: () => Promise<T>
): Promise<TypedResponse<JSONParsed<T>, 200, 'json'>> {
  // Typed as the route's JSON answer; a 304 (no body) is the one other answer, to a conditional request.
  return (await answer(c, deps, scope, compute)) as unknown as TypedResponse<JSONParsed<T>, 200, 'json'>
}

async function answer(
  c: Context,
  deps: CachedAnswerDeps,
  scope: AnswerScope,
  compute: () => Promise<unknown>
): Promise<Response> {
  const etag = await answerETag(deps, scope)
  const headers: Record<string, string> = { ETag: etag, ...cachingHeaders(deps.keysRequired) }
  if (matchesIfNoneMatch(c.req.header('if-none-match'), etag)) return new Response(null, { status: 304, headers })
  const cache = deps.answerCache || null
  let body = cache?.get(etag)
  if (body === undefined) {
    const pending = cache?.inflight.get(etag)
    if (pending) body = await pending
    else {
      const computing = compute().then(answer => JSON.stringify(answer))
      cache?.inflight.set(etag, computing)
      try {
        body = await computing
        cache?.set(
          etag,
          body,
          scope.datasets.map(d => `${scope.tenant}/${d.id}`)
        )
      } finally {
        cache?.inflight.delete(etag)
      }
    }
  }
  return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json', ...headers } })
}
