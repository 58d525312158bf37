/**
 * @module Per-tenant rate limits: a token bucket per tenant, in this process. Behind several API instances each
 * holds its own buckets (a deployment wanting one shared limit puts the platform's limiter in front, e.g.
 * Cloudflare's rate-limiting binding or API Gateway usage plans).
 */
export interface RateLimit {
  /** Sustained requests per second. */
  perSecond: number
  /** Requests allowed at once after a quiet period. */
  burst: number
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now
  ) {
    if (!(limit.perSecond > 0 && limit.burst >= 1))
      throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1')
  }

  /** Takes one request's token, or says how many seconds until one is free. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const t = this.now()
    const b = this.buckets.get(key) ?? { tokens: this.limit.burst, at: t }
    b.tokens = Math.min(this.limit.burst, b.tokens + ((t - b.at) / 1000) * this.limit.perSecond)
    b.at = t
    this.buckets.delete(key) // re-insert: least recently used first, for eviction
    this.buckets.set(key, b)
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value!)
    if (b.tokens >= 1) {
      b.tokens -= 1
      return { ok: true }
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.limit.perSecond)) }
  }
}
