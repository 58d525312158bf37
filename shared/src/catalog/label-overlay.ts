/**
 * @module Label overlays: labels written by a relabel run (an LLM on a tenant's own corpus), stored per tenant and
 * encoder fingerprint as JSONL beside the store, with their detection and fuzzing scores, and merged over the
 * encoder's own labels (imported or offline, whose scores are null).
 *
 * Key: `{tenant}/encoders/{fingerprint}/labels/llm-{stamp}.jsonl`, one `{ latent, label, source, detection, fuzzing }`
 * a line. Per tenant, not under the shared `_encoders/`: the labels are written from the tenant's documents, and an
 * LLM's description of a latent can quote them. Files are merged in key order (the stamp sorts by time), later wins.
 */
import { z } from 'zod'
import type { ObjectStore } from '../store/object-store.ts'
import { assertSafeId } from '../store/layout.ts'

export const LabelScore = z.object({
  detection: z
    .number()
    .nullable()
    .describe(
      'balanced accuracy of the LLM telling activating from non-activating windows given the label (0.5: chance)'
    ),
  fuzzing: z
    .number()
    .nullable()
    .describe('balanced accuracy of the LLM telling correctly from wrongly marked tokens given the label (0.5: chance)')
})
export type LabelScore = z.infer<typeof LabelScore>

export const OverlayLine = z.object({
  latent: z.number().int().nonnegative(),
  label: z.string().min(1),
  source: z.string().min(1),
  detection: z.number().nullable().default(null),
  fuzzing: z.number().nullable().default(null)
})
export type OverlayLine = z.infer<typeof OverlayLine>

/** Labels, sources and scores of every latent; scores are NaN where unknown (imported and offline labels). */
export interface LabelInfo {
  labels: (string | null)[]
  sources: (string | null)[]
  detection: Float32Array
  fuzzing: Float32Array
  /** The encoder's own labels under the overlay (the same array as `labels` without one): label embeddings are cached for these. */
  base?: (string | null)[]
  /** Latents whose label the overlay replaced, ascending. */
  overlaid?: Int32Array
}

/** A fingerprint as a key segment (fingerprints are hex digests in practice; anything else is made safe). */
const segment = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 128) || '_'

export function labelOverlayPrefix(tenant: string, fingerprint: string): string {
  assertSafeId('tenant', tenant)
  return `${tenant}/encoders/${segment(fingerprint)}/labels/`
}

/** Write one overlay file; returns its key. Nothing is written for an empty list. */
export async function writeLabelOverlay(
  objects: ObjectStore,
  tenant: string,
  fingerprint: string,
  lines: readonly OverlayLine[],
  now: Date = new Date()
): Promise<string | null> {
  if (!lines.length) return null
  const stamp = now.toISOString().replace(/[-:.]/g, '').replace('T', '-').replace('Z', '')
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), b => b.toString(16).padStart(2, '0')).join('')
  const key = `${labelOverlayPrefix(tenant, fingerprint)}llm-${stamp}-${rand}.jsonl`
  await objects.put(key, lines.map(l => JSON.stringify(OverlayLine.parse(l))).join('\n') + '\n', {
    contentType: 'application/x-ndjson'
  })
  overlayCache.get(objects)?.delete(labelOverlayPrefix(tenant, fingerprint))
  return key
}

interface Overlay {
  signature: string
  lines: Map<number, OverlayLine>
}
const overlayCache = new WeakMap<ObjectStore, Map<string, Overlay & { checkedAt: number }>>()

/**
 * How long a listing is trusted before the store is listed again: every analysis reads the overlay, and a LIST per
 * request would add its round trip to a diff. Writes through this process are seen at once (writeLabelOverlay drops
 * the entry); another process's relabel shows up within this time.
 */
export const OVERLAY_RECHECK_MS = 5000

/**
 * The merged overlay of a tenant and encoder (latent -> its latest line). Listed at most every OVERLAY_RECHECK_MS; the
 * files are parsed again only when the listing changes. Bad lines are skipped: one
 * corrupt file must not take every label away.
 */
export async function readLabelOverlay(objects: ObjectStore, tenant: string, fingerprint: string): Promise<Overlay> {
  const prefix = labelOverlayPrefix(tenant, fingerprint)
  let cache = overlayCache.get(objects)
  if (!cache) overlayCache.set(objects, (cache = new Map()))
  const hit = cache.get(prefix)
  const now = Date.now()
  if (hit && now - hit.checkedAt < OVERLAY_RECHECK_MS) return hit
  const files = (await objects.list(prefix)).filter(f => f.key.endsWith('.jsonl'))
  const signature = files.map(f => `${f.key}:${f.size}`).join('|')
  if (hit && hit.signature === signature) {
    hit.checkedAt = now
    return hit
  }
  const lines = new Map<number, OverlayLine>()
  for (const f of files) {
    const bytes = await objects.get(f.key)
    if (!bytes) continue
    for (const raw of new TextDecoder().decode(bytes).split('\n')) {
      if (!raw.trim()) continue
      try {
        const line = OverlayLine.safeParse(JSON.parse(raw))
        if (line.success) lines.set(line.data.latent, line.data)
      } catch {
        /* skipped */
      }
    }
  }
  const overlay = { signature, lines, checkedAt: now }
  cache.set(prefix, overlay)
  if (cache.size > 256) cache.delete(cache.keys().next().value!)
  return overlay
}

/** Merged results, per base label array and overlay: the same arrays come back while neither changes (label-embedding digests are memoized per array). */
const merged = new WeakMap<
  ReadonlyArray<string | null>,
  Map<string, { info: LabelInfo; baseSources: (string | null)[] }>
>()

/** The encoder's labels with the overlay on top; without overlay lines, the base arrays themselves. */
export function mergeLabelOverlay(
  base: { labels: (string | null)[]; sources: (string | null)[]; detection?: ArrayLike<number | null> | null },
  overlay: Overlay,
  tag: string
): LabelInfo {
  const n = base.labels.length
  let perBase = merged.get(base.labels)
  if (!perBase) merged.set(base.labels, (perBase = new Map()))
  const key = `${tag}\u0000${overlay.signature}`
  const hit = perBase.get(key)
  if (hit && hit.baseSources === base.sources) return hit.info
  const detection = new Float32Array(n).fill(NaN)
  // The encoder's own scores (offline labels carry a detection score), until an overlay label replaces the label.
  if (base.detection) for (let i = 0; i < n; i++) detection[i] = base.detection[i] ?? NaN
  const fuzzing = new Float32Array(n).fill(NaN)
  let labels = base.labels
  let sources = base.sources
  const overlaid: number[] = []
  if (overlay.lines.size) {
    labels = base.labels.slice()
    sources = base.sources.slice()
    for (const [latent, line] of overlay.lines) {
      if (latent >= n) continue
      labels[latent] = line.label
      sources[latent] = line.source
      detection[latent] = line.detection ?? NaN
      fuzzing[latent] = line.fuzzing ?? NaN
      overlaid.push(latent)
    }
  }
  const info: LabelInfo = {
    labels,
    sources,
    detection,
    fuzzing,
    base: base.labels,
    overlaid: Int32Array.from(overlaid).sort()
  }
  perBase.set(key, { info, baseSources: base.sources })
  if (perBase.size > 8) perBase.delete(perBase.keys().next().value!)
  return info
}

/**
 * The source as results show it: the catalog's own word when it has one, `imported` for a label with no stated
 * source, null for no label.
 */
export function labelSourceOf(info: Pick<LabelInfo, 'labels' | 'sources'>, latent: number): string | null {
  if (info.labels[latent] == null) return null
  return info.sources[latent] ?? 'imported'
}
