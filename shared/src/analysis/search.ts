/** @module Property retrieval as pure functions: the paper's SAE score, ranking, reciprocal rank fusion and snippets. */
import type { PooledCsc } from './sparse.ts'
import { quantile, type LatentStats } from './latent-stats.ts'

/** Reciprocal rank fusion constant of Cormack et al. (2009). */
export const RRF_K = 60

/** w_r = exp(-(r/k)/T) for ranks r = 0..n-1 (the first latent weighs 1). */
export function rankWeights(n: number, k: number, temperature: number): Float32Array {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`)
  const w = new Float32Array(n)
  for (let r = 0; r < n; r++) w[r] = Math.exp(-(r / k) / temperature)
  return w
}

/**
 * Maximal marginal relevance (Carbonell & Goldstein 1998) over candidate latents sorted by label-to-query similarity:
 * repeatedly take the candidate maximizing lambda * similarity - (1 - lambda) * (its highest label cosine with one
 * already taken), until k are taken. Returns indexes into the candidates in the order taken (the first is always the
 * closest label). An SAE splits a concept into several latents that get nearly the same label (the demo's "prev",
 * "up", "chapter" x5): taken in plain similarity order they fill the first ranks, and with them most of the rank
 * weight, whether or not that concept is what the query means. MMR moves such a near-duplicate behind a slightly
 * less similar but different label, yet still takes it before a label that matches the query much less (a set of
 * latents that truly are the query's concept stays together). lambda 1 keeps the similarity order.
 */
export function maximalMarginalRelevance(
  similarities: ArrayLike<number>,
  k: number,
  lambda: number,
  cosine: (i: number, j: number) => number
): Int32Array {
  const n = similarities.length
  const m = Math.max(0, Math.min(k, n))
  const out = new Int32Array(m)
  if (m === 0 || lambda >= 1) {
    for (let i = 0; i < m; i++) out[i] = i
    return out
  }
  const taken = new Uint8Array(n)
  const redundancy = new Float64Array(n).fill(-Infinity)
  let last = 0
  taken[0] = 1
  for (let t = 1; t < m; t++) {
    let best = -1,
      bestScore = -Infinity
    for (let c = 0; c < n; c++) {
      if (taken[c]) continue
      const r = cosine(c, last)
      if (r > redundancy[c]) redundancy[c] = r
      const score = lambda * similarities[c] - (1 - lambda) * redundancy[c]
      if (score > bestScore) {
        bestScore = score
        best = c
      }
    }
    taken[best] = 1
    out[t] = last = best
  }
  return out
}

/** The 90th percentile of each listed latent's present values (from the statistics histogram); 0 when never present. */
/** p90 of every latent, as stored beside the statistics at write time (layout.latentP90). */
export function p90Bytes(stats: LatentStats): Uint8Array {
  const p90 = p90Of(
    stats,
    Int32Array.from({ length: stats.nLatents }, (_, i) => i)
  )
  const bytes = new Uint8Array(p90.byteLength)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < p90.length; i++) view.setFloat32(4 * i, p90[i], true)
  return bytes
}

/** The stored p90s, or null when the bytes do not hold nLatents of them (a dataset written before they were stored). */
export function parseP90Bytes(bytes: Uint8Array | null, nLatents: number): Float32Array | null {
  if (!bytes || bytes.byteLength !== 4 * nLatents) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Float32Array.from({ length: nLatents }, (_, i) => view.getFloat32(4 * i, true))
}

export function p90Of(stats: LatentStats, latents: ArrayLike<number>): Float32Array {
  const out = new Float32Array(latents.length)
  for (let i = 0; i < latents.length; i++) {
    const v = quantile(stats, latents[i], 0.9)
    out[i] = Number.isFinite(v) && v > 0 ? v : 0
  }
  return out
}

/**
 * score[doc] = sum_i weights[i] * min(cap, value(doc, latents[i]) / p90[i]). `csc` needs only the listed latents'
 * columns (readByLatent of those latents). The paper sums normalized activations uncapped, and so does the default
 * (cap = Infinity): capping at 1 (one latent adds at most its weight) measured 0.309 MAP against 0.317 uncapped on the
 * default evaluation, so the strength of a firing above p90 carries some signal.
 */
export function saeScores(
  csc: PooledCsc,
  latents: ArrayLike<number>,
  weights: ArrayLike<number>,
  p90: ArrayLike<number>,
  cap = Infinity
): Float32Array {
  const scores = new Float32Array(csc.nDocs)
  for (let i = 0; i < latents.length; i++) {
    const l = latents[i]
    if (l < 0 || l >= csc.nLatents || !(p90[i] > 0) || !(weights[i] > 0)) continue
    const w = weights[i]
    const inv = 1 / p90[i]
    for (let p = csc.indptr[l]; p < csc.indptr[l + 1]; p++) {
      const v = csc.values[p]
      if (!(v > 0)) continue
      scores[csc.docs[p]] += w * Math.min(cap, v * inv)
    }
  }
  return scores
}

/**
 * Why `doc` scored: the chosen latents present in it, each with its part of saeScores' sum (weight x value / p90,
 * capped alike), largest first, at most `limit`. `csc` holds the chosen latents' columns, sorted by doc.
 */
export function scoreParts(
  csc: Omit<PooledCsc, 'positions'>,
  latents: ArrayLike<number>,
  weights: ArrayLike<number>,
  p90: ArrayLike<number>,
  doc: number,
  limit: number,
  cap = Infinity
): Array<{ latent: number; value: number; part: number }> {
  const parts: Array<{ latent: number; value: number; part: number }> = []
  for (let i = 0; i < latents.length; i++) {
    const l = latents[i]
    if (l < 0 || l >= csc.nLatents || !(p90[i] > 0) || !(weights[i] > 0)) continue
    let lo = csc.indptr[l]
    let hi = csc.indptr[l + 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (csc.docs[mid] < doc) lo = mid + 1
      else hi = mid
    }
    if (lo === csc.indptr[l + 1] || csc.docs[lo] !== doc || !(csc.values[lo] > 0)) continue
    const value = csc.values[lo]
    parts.push({ latent: l, value, part: weights[i] * Math.min(cap, value / p90[i]) })
  }
  return parts.sort((a, b) => b.part - a.part || a.latent - b.latent).slice(0, limit)
}

/** True when (sa, ra) ranks below (sb, rb): lower score, or equal score and higher row. */
const worse = (sa: number, ra: number, sb: number, rb: number) => sa < sb || (sa === sb && ra > rb)

/**
 * Rows with a positive score, best first (ties to the lower row), at most `limit` of them. A bounded min-heap keeps
 * this O(n log limit) with no array of all rows.
 */
export function topRows(scores: ArrayLike<number>, limit: number = Infinity): Int32Array {
  const n = scores.length
  const cap = Math.min(Math.max(0, Math.floor(Math.min(limit, n))), n)
  if (cap === 0) return new Int32Array(0)
  const heap = new Int32Array(cap)
  let size = 0
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < size && worse(scores[heap[l]], heap[l], scores[heap[m]], heap[m])) m = l
      if (r < size && worse(scores[heap[r]], heap[r], scores[heap[m]], heap[m])) m = r
      if (m === i) return
      const t = heap[i]
      heap[i] = heap[m]
      heap[m] = t
      i = m
    }
  }
  for (let row = 0; row < n; row++) {
    const s = scores[row]
    if (!(s > 0)) continue
    if (size < cap) {
      let i = size++
      heap[i] = row
      while (i > 0) {
        const p = (i - 1) >> 1
        if (!worse(scores[heap[i]], heap[i], scores[heap[p]], heap[p])) break
        const t = heap[i]
        heap[i] = heap[p]
        heap[p] = t
        i = p
      }
    } else if (worse(scores[heap[0]], heap[0], s, row)) {
      heap[0] = row
      down(0)
    }
  }
  const out = heap.slice(0, size)
  return out.sort((a, b) => scores[b] - scores[a] || a - b)
}

/**
 * Reciprocal rank fusion: score[doc] = sum over rankings of 1 / (k + rank), rank 1-based. Documents missing from
 * a ranking get nothing from it.
 */
export function reciprocalRankFusion(
  rankings: ReadonlyArray<ArrayLike<number>>,
  nDocs: number,
  k = RRF_K
): Float32Array {
  const scores = new Float32Array(nDocs)
  for (const ranking of rankings) {
    for (let r = 0; r < ranking.length; r++) scores[ranking[r]] += 1 / (k + r + 1)
  }
  return scores
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Characters per token assumed where a document was cut at max tokens (typical of English with BPE tokenizers). */
export const CHARS_PER_TOKEN = 4

/**
 * Estimated character offset of token `position` (BOS is token 0): positions, not character offsets, are stored, so
 * this scales by the document's own characters per token, or CHARS_PER_TOKEN when it was truncated (its tokens cover
 * only a prefix of the text). Good to a few dozen characters on prose, enough to centre a snippet.
 */
export function estimateCharOffset(
  textLength: number,
  tokenCount: number,
  truncated: boolean,
  position: number
): number {
  if (!(position >= 0) || textLength === 0) return -1
  const perToken = truncated || tokenCount <= 1 ? CHARS_PER_TOKEN : textLength / (tokenCount - 1)
  return Math.min(textLength - 1, Math.round(Math.max(0, position - 1) * perToken))
}

/** Token position of the max of the first listed latent present in `doc` (columns sorted by doc), or -1. */
export function firstLatentPosition(csc: PooledCsc, latents: ArrayLike<number>, doc: number): number {
  const at = firstLatentEntry(csc, latents, doc)
  return at < 0 ? -1 : csc.positions[at]
}

/** Where firstLatentPosition reads its position: the index of that entry in the CSC's arrays, or -1. */
export function firstLatentEntry(csc: Omit<PooledCsc, 'positions'>, latents: ArrayLike<number>, doc: number): number {
  for (let i = 0; i < latents.length; i++) {
    const l = latents[i]
    if (l < 0 || l >= csc.nLatents) continue
    let lo = csc.indptr[l]
    let hi = csc.indptr[l + 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (csc.docs[mid] < doc) lo = mid + 1
      else hi = mid
    }
    if (lo < csc.indptr[l + 1] && csc.docs[lo] === doc && csc.values[lo] > 0) return lo
  }
  return -1
}

/** A document's text for a snippet: its text, or a chat document's turns as "role: content" lines ('' if unreadable). */
export function documentText(text: string | null | undefined, messages: string | null | undefined): string {
  if (text) return text
  if (!messages) return ''
  try {
    return (JSON.parse(messages) as Array<{ role: string; content: string }>)
      .map(m => `${m.role}: ${m.content}`)
      .join('\n')
  } catch {
    return ''
  }
}

/**
 * About `width` characters of `text`, centred on character `at` when given (>= 0), else on the first occurrence of any of `terms` as a whole word when there is
 * one, else its start. Whitespace is collapsed; cut ends get an ellipsis.
 */
export function snippet(text: string, terms: readonly string[] = [], width = 200, atChar = -1): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  if (flat.length <= width) return flat
  // Collapsing whitespace moves characters left: map the offset through the prefix.
  let at = atChar >= 0 ? text.slice(0, atChar).replace(/\s+/g, ' ').trimStart().length : -1
  const words = terms.filter(t => t.length > 0)
  if (at < 0 && words.length) {
    const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.map(escapeRegExp).join('|')})(?![\\p{L}\\p{N}])`, 'iu')
    at = flat.search(re)
  }
  let start = at < 0 ? 0 : Math.max(0, at - Math.floor(width / 3))
  let end = Math.min(flat.length, start + width)
  start = Math.max(0, end - width)
  // Cut at word boundaries when one is near.
  if (start > 0) {
    const sp = flat.indexOf(' ', start)
    if (sp >= 0 && sp - start < 20) start = sp + 1
  }
  if (end < flat.length) {
    const sp = flat.lastIndexOf(' ', end)
    if (sp > start && end - sp < 20) end = sp
  }
  return `${start > 0 ? '…' : ''}${flat.slice(start, end)}${end < flat.length ? '…' : ''}`
}
