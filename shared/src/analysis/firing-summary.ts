/** @module What a latent without a label fires on, read off its top examples: the token it most often peaks on, and a window around one such peak. */
import type { TopExample } from '../contract/latents.ts'

export interface FiringSummary {
  /** The peak token (trimmed) most frequent among the examples; ties go to the higher-ranked example's. */
  token: string
  /** How many of the examples peak on it. */
  count: number
  examples: number
  /** The best-ranked example that peaks on it, as text around its peak (about `width` characters either side). */
  window: string
}

const peakToken = (e: TopExample) => (e.tokens[e.position - e.windowStart] ?? '').trim()

/** null when no example has a peak token with a visible character. */
export function firingSummary(examples: readonly TopExample[], width = 30): FiringSummary | null {
  const counts = new Map<string, { count: number; first: number }>()
  examples.forEach((e, i) => {
    const t = peakToken(e)
    if (!t) return
    const key = t.toLowerCase()
    const c = counts.get(key)
    if (c) c.count++
    else counts.set(key, { count: 1, first: i })
  })
  let best: { key: string; count: number; first: number } | null = null
  for (const [key, c] of counts)
    if (!best || c.count > best.count || (c.count === best.count && c.first < best.first)) best = { key, ...c }
  if (!best) return null
  const e = examples[best.first]
  const at = e.position - e.windowStart
  const before = e.tokens.slice(0, at).join('')
  const after = e.tokens.slice(at + 1).join('')
  const clean = (s: string) => s.replace(/\s+/g, ' ')
  // Cut at word boundaries, so the window does not start or end inside a word.
  const b = clean(before)
  const a = clean(after)
  const left = (b.length > width ? b.slice(-width).replace(/^\S*/, '') : b).trimStart()
  const right = (a.length > width ? a.slice(0, width).replace(/\S*$/, '') : a).trimEnd()
  return {
    token: peakToken(e),
    count: best.count,
    examples: examples.length,
    window: `...${left}${clean(e.tokens[at])}${right}...`
  }
}
