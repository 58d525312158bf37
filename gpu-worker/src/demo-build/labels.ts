/**
 * @module Offline latent labels for the demo encoder: each latent is described by the tokens it fires
 * on most strongly and one short context, which is what a randomly initialized reader's latents encode.
 */

/**
 * A bounded set of each latent's strongest activations, in flat typed arrays ([dSae, perLatent]).
 * Offers below a latent's current minimum are rejected in O(1), which is nearly all of them once
 * the sets have filled.
 */
export class TopActivations {
  readonly values: Float32Array
  readonly tokens: Int32Array
  private readonly minimum: Float32Array
  private readonly minimumSlot: Int32Array

  constructor(
    readonly dSae: number,
    readonly perLatent: number
  ) {
    this.values = new Float32Array(dSae * perLatent).fill(-Infinity)
    this.tokens = new Int32Array(dSae * perLatent).fill(-1)
    this.minimum = new Float32Array(dSae).fill(-Infinity)
    this.minimumSlot = new Int32Array(dSae)
  }

  /** `token` is any caller-side index (here: the token's position in the whole corpus). */
  offer(latent: number, value: number, token: number): void {
    if (!(value > this.minimum[latent])) return
    const base = latent * this.perLatent
    this.values[base + this.minimumSlot[latent]] = value
    this.tokens[base + this.minimumSlot[latent]] = token
    let slot = 0
    for (let s = 1; s < this.perLatent; s++) if (this.values[base + s] < this.values[base + slot]) slot = s
    this.minimum[latent] = this.values[base + slot]
    this.minimumSlot[latent] = slot
  }

  /** The latent's kept activations, strongest first. */
  examples(latent: number): Array<{ value: number; token: number }> {
    const base = latent * this.perLatent
    const out: Array<{ value: number; token: number }> = []
    for (let s = 0; s < this.perLatent; s++)
      if (this.tokens[base + s] >= 0) out.push({ value: this.values[base + s], token: this.tokens[base + s] })
    return out.sort((a, b) => b.value - a.value)
  }
}

/** A sentencepiece token as text: '▁' is a space, `<0x0A>`-style byte tokens are their character. */
export function tokenText(piece: string): string {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece)
  if (byte) return String.fromCharCode(parseInt(byte[1], 16))
  return piece.replace(/▁/g, ' ')
}

export const MAX_LABEL_LENGTH = 119

/**
 * `tokens "whale", " whales", " Whale" (e.g. "...the white whale...")`: the most frequent token
 * strings among the top activations (ties broken by strength), then the strongest example's context,
 * `left` ending with the activating token and a little `right` of it. JSON quoting keeps spaces and
 * newlines visible. To fit, cuts the context from the left (never the activating token), then
 * shows fewer tokens; the context goes only if even one token leaves no room for it.
 */
export function formatLabel(topTokens: string[], left: string, right = ''): string {
  const clean = (s: string) => s.replace(/\s+/g, ' ').replace(/"/g, "'")
  const after = clean(right).slice(0, 16).trimEnd()
  const head = (nTokens: number) =>
    `${nTokens === 1 ? 'token' : 'tokens'} ${topTokens
      .slice(0, nTokens)
      .map(t => JSON.stringify(t))
      .join(', ')}`
  const before = clean(left).trimStart()
  if (before.trim().length > 0) {
    for (let nTokens = Math.min(3, topTokens.length); nTokens >= 1; nTokens--) {
      const h = head(nTokens)
      const room = MAX_LABEL_LENGTH - h.length - ' (e.g. "......")'.length - after.length
      if (room >= 12)
        return `${h} (e.g. "...${before.length > room ? before.slice(before.length - room) : before}${after}...")`
    }
  }
  for (let nTokens = Math.min(3, topTokens.length); nTokens >= 1; nTokens--)
    if (head(nTokens).length <= MAX_LABEL_LENGTH) return head(nTokens)
  return head(1).slice(0, MAX_LABEL_LENGTH)
}

/** Token strings ranked by how many of the top activations they account for. */
export function rankTokens(examples: Array<{ value: number; text: string }>): string[] {
  const stats = new Map<string, { count: number; max: number }>()
  for (const { value, text } of examples) {
    const s = stats.get(text)
    if (s) {
      s.count++
      s.max = Math.max(s.max, value)
    } else stats.set(text, { count: 1, max: value })
  }
  return [...stats.entries()].sort((a, b) => b[1].count - a[1].count || b[1].max - a[1].max).map(([text]) => text)
}
