/** @module What a latent fires on, read off its top examples: the token it most often peaks on, and the text around a token of a window (for the demo's unlabelled latents and offline labels). */
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

/** What a summary reads of an example: its window's tokens and where the peak is. */
export type ExampleWindow = Pick<TopExample, 'tokens' | 'position' | 'windowStart'>

const SPECIAL_TOKEN = /^<\|?[A-Za-z_]+\|?>$/

const peakToken = (e: ExampleWindow) => (e.tokens[e.position - e.windowStart] ?? '').trim()

/**
 * The text of `tokens` around token `at`: about `width` characters either side, cut between words, as
 * `...before TOKEN after...` (whitespace runs collapsed).
 */
export function windowAround(tokens: readonly string[], at: number, width = 30): string {
  const clean = (s: string) => s.replace(/\s+/g, ' ')
  const b = clean(tokens.slice(0, at).join(''))
  const a = clean(tokens.slice(at + 1).join(''))
  const left = (b.length > width ? b.slice(-width).replace(/^\S*/, '') : b).trimStart()
  const right = (a.length > width ? a.slice(0, width).replace(/\S*$/, '') : a).trimEnd()
  const peak = clean(tokens[at] ?? '')
  return `...${left}${left ? peak : peak.trimStart()}${right}...`
}

/** null when no example has a peak token with a visible character. */
export function firingSummary(examples: readonly ExampleWindow[], width = 30): FiringSummary | null {
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
  // A window at the document's start begins with the reader's BOS token (`<s>`, `<bos>`, `<|endoftext|>`), which is
  // not text: left out of the window's text unless the latent peaks on it.
  const at = e.position - e.windowStart
  const bos = e.windowStart === 0 && at > 0 && SPECIAL_TOKEN.test(e.tokens[0] ?? '')
  return {
    token: peakToken(e),
    count: best.count,
    examples: examples.length,
    window: bos ? windowAround(e.tokens.slice(1), at - 1, width) : windowAround(e.tokens, at, width)
  }
}
