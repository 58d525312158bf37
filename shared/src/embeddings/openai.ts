/** @module The OpenAI-compatible Embedder (the `openai` client against any compatible server), and embedderFromEnv (that endpoint when configured, offline otherwise). */
import type OpenAI from 'openai'
import type { Embedder } from './embedder.ts'
import { OfflineEmbedder } from './offline.ts'

/** OpenAI's own limit is 2048 inputs per request; compatible servers (vLLM, TEI, Ollama) often take fewer. */
export const MAX_BATCH = 256

export interface OpenAIEmbedderOptions {
  baseURL: string
  model: string
  apiKey?: string
  /** Asked of the server (text-embedding-3 models can shorten their output); otherwise learnt from the first answer. */
  dimensions?: number
  batchSize?: number
  /** Attempts per batch on 429, 5xx and network errors (default 5). */
  maxAttempts?: number
  /** First backoff in ms, doubled each retry (with jitter); a Retry-After header wins when present. */
  backoffMs?: number
  maxBackoffMs?: number
  timeoutMs?: number
  fetch?: typeof globalThis.fetch
  sleep?: (ms: number) => Promise<void>
}

export class EmbeddingRequestError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message)
    this.name = 'EmbeddingRequestError'
  }
}

const KNOWN_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536
}

function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500
}

function retryAfterMs(header: string | null): number | null {
  if (!header) return null
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(header)
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null
}

export class OpenAIEmbedder implements Embedder {
  readonly id: string
  private dims: number
  private readonly url: string
  private readonly opts: OpenAIEmbedderOptions
  private clientLoad?: Promise<{ client: OpenAI; OpenAI: typeof OpenAI }>

  constructor(opts: OpenAIEmbedderOptions) {
    if (!opts.model) throw new Error('OpenAIEmbedder needs a model')
    this.opts = opts
    this.url = `${opts.baseURL.replace(/\/+$/, '')}/embeddings`
    this.dims = opts.dimensions ?? KNOWN_DIMENSIONS[opts.model] ?? 0
    // The cache key names the model and any shortening: two sizes of one model are different embeddings.
    this.id = `openai:${opts.model}${opts.dimensions ? `@${opts.dimensions}` : ''}`
  }

  /**
   * The `openai` package is imported on first use, not with this module: it is the heaviest import of the API (a
   * process that never embeds through an endpoint, or a cold start before its first query, does not pay for it).
   */
  private client(): Promise<{ client: OpenAI; OpenAI: typeof OpenAI }> {
    const opts = this.opts
    return (this.clientLoad ??= import('openai').then(({ default: OpenAI }) => ({
      OpenAI,
      client: new OpenAI({
        baseURL: opts.baseURL,
        // Never fall back to OPENAI_API_KEY from the environment: that key must not go to another server. Without a
        // key (vLLM, Ollama, TEI) no Authorization header is sent at all.
        apiKey: opts.apiKey ?? 'none',
        ...(opts.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
        // Retries are ours (below): the same policy for every compatible server, and testable without waiting.
        maxRetries: 0,
        timeout: opts.timeoutMs ?? 60_000,
        ...(opts.fetch ? { fetch: opts.fetch } : {})
      })
    })))
  }

  /** 0 until the first answer for a model of unknown size. */
  get dimensions(): number {
    return this.dims
  }

  async embed(texts: string[]): Promise<Float32Array> {
    const batch = Math.min(this.opts.batchSize ?? MAX_BATCH, MAX_BATCH)
    const parts: Float32Array[] = []
    for (let at = 0; at < texts.length; at += batch) parts.push(await this.embedBatch(texts.slice(at, at + batch)))
    const d = this.dims
    const out = new Float32Array(texts.length * d)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.length
    }
    return out
  }

  private async embedBatch(input: string[]): Promise<Float32Array> {
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>(r => setTimeout(r, ms)))
    const attempts = this.opts.maxAttempts ?? 5
    let lastError: Error = new Error('no attempt made')
    const { client, OpenAI } = await this.client()
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const res = await client.embeddings.create({
          // Empty strings are rejected by OpenAI: a single space embeds to "nothing in particular" instead.
          model: this.opts.model,
          input: input.map(s => (s.length ? s : ' ')),
          encoding_format: 'float',
          ...(this.opts.dimensions ? { dimensions: this.opts.dimensions } : {})
        })
        return this.parse(res, input.length)
      } catch (err) {
        if (err instanceof EmbeddingRequestError) throw err
        if (err instanceof OpenAI.APIError && err.status !== undefined) {
          const detail = (err.message ?? '').slice(0, 300)
          lastError = new EmbeddingRequestError(
            err.status,
            `embeddings endpoint ${this.url} answered ${err.status}: ${detail}`
          )
          if (!retryable(err.status)) throw lastError
          if (attempt + 1 < attempts) await sleep(this.backoff(attempt, err.headers?.get('retry-after') ?? null))
        } else {
          // Network errors and timeouts (APIConnectionError, APIConnectionTimeoutError): retried like a 5xx.
          lastError = err as Error
          if (attempt + 1 < attempts) await sleep(this.backoff(attempt, null))
        }
      }
    }
    throw lastError
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const max = this.opts.maxBackoffMs ?? 30_000
    const told = retryAfterMs(retryAfter)
    if (told !== null) return Math.min(told, max)
    const base = (this.opts.backoffMs ?? 500) * 2 ** attempt
    return Math.min(base * (0.5 + Math.random() * 0.5), max)
  }

  private parse(json: unknown, n: number): Float32Array {
    const data = (json as { data?: Array<{ index?: number; embedding?: number[] }> })?.data
    if (!Array.isArray(data) || data.length !== n) {
      throw new EmbeddingRequestError(
        502,
        `embeddings endpoint ${this.url} returned ${Array.isArray(data) ? data.length : 'no'} embeddings for ${n} inputs`
      )
    }
    const d = data[0]?.embedding?.length ?? 0
    if (!d) throw new EmbeddingRequestError(502, `embeddings endpoint ${this.url} returned an empty embedding`)
    if (this.dims === 0) this.dims = d
    if (d !== this.dims)
      throw new EmbeddingRequestError(
        502,
        `embeddings endpoint ${this.url} returned ${d} dimensions, expected ${this.dims}`
      )
    const out = new Float32Array(n * d)
    data.forEach((item, i) => {
      const at = item.index ?? i // answers carry an index; order by it, not by position
      const e = item.embedding
      if (!Array.isArray(e) || e.length !== d || !(at >= 0 && at < n))
        throw new EmbeddingRequestError(502, `malformed embedding ${i} from ${this.url}`)
      let norm = 0
      for (let j = 0; j < d; j++) norm += e[j] * e[j]
      const s = norm > 0 ? 1 / Math.sqrt(norm) : 0
      for (let j = 0; j < d; j++) out[at * d + j] = e[j] * s
    })
    return out
  }
}

/**
 * EMBEDDINGS_BASE_URL / EMBEDDINGS_MODEL / EMBEDDINGS_API_KEY (and optional EMBEDDINGS_DIMENSIONS): an
 * OpenAI-compatible endpoint when a base URL or an API key is set (base URL defaults to OpenAI's, model to
 * text-embedding-3-small); the offline embedder otherwise.
 */
export function embedderFromEnv(
  env: Record<string, string | undefined> = process.env,
  fetchImpl?: typeof globalThis.fetch
): Embedder {
  const baseURL = env.EMBEDDINGS_BASE_URL?.trim()
  const apiKey = env.EMBEDDINGS_API_KEY?.trim()
  if (!baseURL && !apiKey) return new OfflineEmbedder()
  const dims = env.EMBEDDINGS_DIMENSIONS ? Number(env.EMBEDDINGS_DIMENSIONS) : undefined
  if (dims !== undefined && !(Number.isInteger(dims) && dims > 0))
    throw new Error(`EMBEDDINGS_DIMENSIONS must be a positive integer, got "${env.EMBEDDINGS_DIMENSIONS}"`)
  return new OpenAIEmbedder({
    baseURL: baseURL || 'https://api.openai.com/v1',
    model: env.EMBEDDINGS_MODEL?.trim() || 'text-embedding-3-small',
    apiKey: apiKey || undefined,
    dimensions: dims,
    fetch: fetchImpl
  })
}
