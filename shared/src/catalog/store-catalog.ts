/**
 * @module The encoder catalog read from the object store: what the GPU worker published at start-up
 * (`_encoders/catalog.json` + `_encoders/{id}/labels.json`), so an API that loads no model (a Worker,
 * a Lambda) still knows every encoder and its labels.
 */
import { z } from 'zod'
import { EncoderInfo, UnavailableEncoder } from '../contract/encoder.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { labelsVersionOf, type EncoderCatalog } from './catalog.ts'

export const ENCODER_CATALOG_KEY = '_encoders/catalog.json'
export const encoderLabelsKey = (id: string) => `_encoders/${id}/labels.json`

export const PublishedCatalog = z.object({
  version: z.literal(1),
  publishedAt: z.string(),
  encoders: z.array(EncoderInfo),
  /** Folders the last publishing worker found but could not load (absent in catalogs published before it existed). */
  unavailable: z.array(UnavailableEncoder).optional()
})
export type PublishedCatalog = z.infer<typeof PublishedCatalog>

export const PublishedLabels = z.object({
  /** The encoder these labels were made for: labels of a replaced encoder with the same id are refused. */
  fingerprint: z.string(),
  /** EncoderInfo.labelsVersion of the catalog entry written with these labels (absent in files published before it). */
  labelsVersion: z.string().optional(),
  labels: z.array(z.string().nullable()),
  labelSources: z.array(z.string().nullable()).optional(),
  labelDetection: z.array(z.number().nullable()).optional()
})
export type PublishedLabels = z.infer<typeof PublishedLabels>

export interface PublishableEncoder {
  info: EncoderInfo
  labels: (string | null)[]
  labelSources?: (string | null)[]
  labelDetection?: (number | null)[]
}

function parseJson(bytes: Uint8Array, key: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new Error(`${key} is not JSON: ${(err as Error).message}`)
  }
}

/**
 * Publish encoders for store-backed catalogs: labels first, then the catalog, so a reader never sees an
 * encoder whose labels are missing. Entries already published under other ids (another worker's
 * encoders) are kept; an id published again is replaced.
 */
export async function publishEncoderCatalog(
  objects: ObjectStore,
  encoders: Iterable<PublishableEncoder>,
  now: () => Date = () => new Date(),
  unavailable: UnavailableEncoder[] = []
): Promise<PublishedCatalog> {
  // Every published entry carries a labels version, so an API sees labels re-imported under the same fingerprint.
  const list = [...encoders].map(e => ({
    ...e,
    info: {
      ...e.info,
      labelsVersion: e.info.labelsVersion ?? labelsVersionOf(e.labels, e.labelSources, e.labelDetection)
    }
  }))
  for (const e of list) {
    const body: PublishedLabels = {
      fingerprint: e.info.fingerprint,
      ...(e.info.labelsVersion ? { labelsVersion: e.info.labelsVersion } : {}),
      labels: e.labels,
      ...(e.labelSources ? { labelSources: e.labelSources } : {}),
      ...(e.labelDetection?.some(d => d !== null) ? { labelDetection: e.labelDetection } : {})
    }
    await objects.put(encoderLabelsKey(e.info.id), JSON.stringify(body), { contentType: 'application/json' })
  }
  const existing = await objects.get(ENCODER_CATALOG_KEY)
  const previous = existing ? PublishedCatalog.safeParse(parseJson(existing, ENCODER_CATALOG_KEY)) : null
  const ids = new Set(list.map(e => e.info.id))
  const kept = previous?.success ? previous.data.encoders.filter(info => !ids.has(info.id)) : []
  const catalog: PublishedCatalog = {
    version: 1,
    publishedAt: now().toISOString(),
    encoders: [...list.map(e => e.info), ...kept].sort((a, b) => a.id.localeCompare(b.id)),
    // What this worker could not load: its folders are the ones it says anything about.
    unavailable
  }
  await objects.put(ENCODER_CATALOG_KEY, JSON.stringify(catalog), { contentType: 'application/json' })
  return catalog
}

export interface StoreEncoderCatalogOptions {
  /** How long a read catalog is trusted before `refresh()` reads it again (default 60 s). */
  ttlMs?: number
  now?: () => number
}

/**
 * EncoderCatalog over the published catalog. `list`/`get` are synchronous in the interface, so they answer
 * from the last snapshot: call `refresh()` (cheap within the TTL) before handling a request.
 */
export class StoreEncoderCatalog implements EncoderCatalog {
  private snapshot: PublishedCatalog | null = null
  private loadedAt = -Infinity
  private inflight: Promise<void> | null = null
  private readonly labelCache = new Map<string, Promise<PublishedLabels>>()
  private readonly ttlMs: number
  private readonly now: () => number

  constructor(
    private readonly objects: ObjectStore,
    options: StoreEncoderCatalogOptions = {}
  ) {
    this.ttlMs = options.ttlMs ?? 60_000
    this.now = options.now ?? Date.now
  }

  static async load(objects: ObjectStore, options?: StoreEncoderCatalogOptions): Promise<StoreEncoderCatalog> {
    const catalog = new StoreEncoderCatalog(objects, options)
    await catalog.refresh()
    return catalog
  }

  /** Re-read the catalog when the snapshot is older than the TTL (or `force`). No catalog yet means no encoders. */
  async refresh(force = false): Promise<void> {
    if (!force && this.now() - this.loadedAt < this.ttlMs) return
    this.inflight ??= (async () => {
      try {
        const bytes = await this.objects.get(ENCODER_CATALOG_KEY)
        this.snapshot = bytes ? PublishedCatalog.parse(parseJson(bytes, ENCODER_CATALOG_KEY)) : null
        this.loadedAt = this.now()
      } finally {
        this.inflight = null
      }
    })()
    await this.inflight
  }

  list(): EncoderInfo[] {
    return this.snapshot ? [...this.snapshot.encoders] : []
  }
  get(id: string): EncoderInfo | undefined {
    return this.snapshot?.encoders.find(e => e.id === id)
  }
  unavailable(): UnavailableEncoder[] {
    return [...(this.snapshot?.unavailable ?? [])]
  }

  private published(id: string): Promise<PublishedLabels> {
    const info = this.get(id)
    if (!info) return Promise.reject(new Error(`unknown encoder "${id}"`))
    // Cached per fingerprint and labels version: a republished encoder (new weights, or only new labels) gets its new
    // labels at the next refresh. Catalogs published before labelsVersion existed key on the fingerprint alone.
    const cacheKey = `${id}\u0000${info.fingerprint}\u0000${info.labelsVersion ?? ''}`
    let hit = this.labelCache.get(cacheKey)
    if (!hit) {
      // One entry per encoder: what an earlier catalog said is not asked for again.
      for (const k of this.labelCache.keys()) if (k.startsWith(`${id}\u0000`)) this.labelCache.delete(k)
      hit = (async () => {
        const key = encoderLabelsKey(id)
        const bytes = await this.objects.get(key)
        if (!bytes) throw new Error(`encoder "${id}" has no published labels (${key})`)
        const labels = PublishedLabels.parse(parseJson(bytes, key))
        if (labels.fingerprint !== info.fingerprint) {
          throw new Error(
            `labels of encoder "${id}" are for fingerprint ${labels.fingerprint.slice(0, 12)}, the catalog says ${info.fingerprint.slice(0, 12)}: republish the encoder`
          )
        }
        // Labels are written before the catalog: a snapshot older than the labels file reads newer labels than it
        // names. They are served, but not kept under the old version, so the next request after a refresh reads again.
        if (labels.labelsVersion && info.labelsVersion && labels.labelsVersion !== info.labelsVersion)
          queueMicrotask(() => this.labelCache.delete(cacheKey))
        return labels
      })()
      hit.catch(() => this.labelCache.delete(cacheKey))
      this.labelCache.set(cacheKey, hit)
    }
    return hit
  }

  async labels(id: string): Promise<(string | null)[]> {
    return (await this.published(id)).labels
  }
  async labelSources(id: string): Promise<(string | null)[]> {
    const p = await this.published(id)
    return p.labelSources ?? p.labels.map(() => null)
  }
  async labelDetection(id: string): Promise<(number | null)[]> {
    const p = await this.published(id)
    return p.labelDetection ?? p.labels.map(() => null)
  }
}
