/** @module The text of a latent's label that is compared with queries: one rule shared by the API (search, clustering, correlations) and the worker that embeds an encoder's labels ahead of them. */

/** The trailing example of an offline label: ` (e.g. "...window...")`. */
const OFFLINE_EXAMPLE = /\s*\(e\.g\. ".*"\)\s*$/s

/**
 * The text of a label that is compared with queries: the label, less the example window an offline label ends with
 * (source "offline-lift", an encoder's words by lift, or "offline-examples", the offline relabeller's: words, then one
 * example). The words describe the latent; the window is one sample
 * of text around an activation, whose other words only add noise to the match (measured, `npm run eval:retrieval`:
 * MAP 0.460 -> 0.463 at k 10, 0.490 -> 0.502 at k 30, 0.534 -> 0.543 at k 100). Other labels are matched whole.
 */
export function matchText(label: string | null, source: string | null | undefined): string | null {
  if (!label || (source !== 'offline-lift' && source !== 'offline-examples')) return label
  const words = label.replace(OFFLINE_EXAMPLE, '')
  return words.trim() ? words : label
}

const matchTextCache = new WeakMap<ReadonlyArray<string | null>, ReadonlyArray<string | null>>()

/**
 * An encoder's own labels as matched: when its labels are offline ones, each loses its example (all of them, so the
 * text, and the label-embedding cache keyed by its digest, is the same whatever a tenant's overlay replaced). One
 * array per label array, so the label cache's memoized digest applies. Whoever embeds labels ahead of a search must
 * pass them through here: the stored embeddings are found by the digest of exactly these texts.
 */
export function encoderMatchTexts(
  labels: ReadonlyArray<string | null>,
  sources: ReadonlyArray<string | null | undefined>
): ReadonlyArray<string | null> {
  let out = matchTextCache.get(labels)
  if (!out) {
    out = sources.some(s => s === 'offline-lift') ? labels.map(l => matchText(l, 'offline-lift')) : labels
    matchTextCache.set(labels, out)
  }
  return out
}
