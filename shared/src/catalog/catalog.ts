/** @module The EncoderCatalog adapter: what the API knows about encoders without loading any model. */
import type { EncoderInfo, UnavailableEncoder } from '../contract/encoder.ts'
import { sha256Hex } from '../util/sha256.ts'

/**
 * EncoderInfo.labelsVersion: a digest of what the API shows of an encoder's own labels. Cached answers and caches of
 * published labels key on it, since re-importing labels (a new labels.jsonl, a Neuronpedia export) keeps the fingerprint.
 */
export function labelsVersionOf(
  labels: ReadonlyArray<string | null>,
  sources?: ReadonlyArray<string | null>,
  detection?: ArrayLike<number | null> | null
): string {
  const scores = detection ? Array.from(detection) : null
  return sha256Hex(JSON.stringify([labels, sources ?? null, scores])).slice(0, 32)
}

export interface EncoderCatalog {
  list(): EncoderInfo[]
  get(id: string): EncoderInfo | undefined
  /** One label (or null) per latent. */
  labels(id: string): Promise<(string | null)[]>
  /** Where each label came from (e.g. 'offline-lift', 'neuronpedia'), or null. */
  labelSources?(id: string): Promise<(string | null)[]>
  /** Encoder folders that were found but failed to load, with the reason (folder names only, no machine paths). */
  unavailable?(): UnavailableEncoder[]
  /** The detection score the encoder's own labels file gives each label (offline labels), or null. */
  labelDetection?(id: string): Promise<(number | null)[]>
}

type CatalogEntry = {
  info: EncoderInfo
  labels: (string | null)[]
  labelSources?: (string | null)[]
  labelDetection?: (number | null)[]
}

/** A catalog over a fixed set of encoders, with their labels already in memory. */
export class StaticEncoderCatalog implements EncoderCatalog {
  private readonly byId = new Map<string, CatalogEntry>()
  /** One all-null array per entry without sources or scores: the same array every call, as stored labels are. */
  private readonly blanks = new WeakMap<CatalogEntry, null[]>()
  constructor(
    entries: CatalogEntry[],
    private readonly failed: UnavailableEncoder[] = []
  ) {
    for (const e of entries) {
      const labelsVersion = e.info.labelsVersion ?? labelsVersionOf(e.labels, e.labelSources, e.labelDetection)
      this.byId.set(e.info.id, { ...e, info: { ...e.info, labelsVersion } })
    }
  }
  list(): EncoderInfo[] {
    return [...this.byId.values()].map(e => e.info)
  }
  unavailable(): UnavailableEncoder[] {
    return [...this.failed]
  }
  get(id: string): EncoderInfo | undefined {
    return this.byId.get(id)?.info
  }
  async labels(id: string): Promise<(string | null)[]> {
    const entry = this.byId.get(id)
    if (!entry) throw new Error(`unknown encoder "${id}"`)
    return entry.labels
  }
  async labelSources(id: string): Promise<(string | null)[]> {
    const entry = this.byId.get(id)
    if (!entry) throw new Error(`unknown encoder "${id}"`)
    return entry.labelSources ?? this.blank(entry)
  }
  async labelDetection(id: string): Promise<(number | null)[]> {
    const entry = this.byId.get(id)
    if (!entry) throw new Error(`unknown encoder "${id}"`)
    return entry.labelDetection ?? this.blank(entry)
  }
  private blank(entry: CatalogEntry): null[] {
    let b = this.blanks.get(entry)
    if (!b) this.blanks.set(entry, (b = entry.labels.map(() => null)))
    return b
  }
}
