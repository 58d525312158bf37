/** @module The one LLM adapter: any OpenAI-compatible chat endpoint through the `openai` package, with zod-validated JSON answers, retries, a concurrency cap, timeouts and a usage ledger. */
import type OpenAI from 'openai'
import type { z } from 'zod'
import {
  countChatTokens,
  countTokens,
  UsageLedger,
  type ChatMessage,
  type PriceTable,
  type TokenScale,
  type TokenUsage
} from './cost.ts'

export interface LlmConfig {
  /** e.g. https://api.openai.com/v1, http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama). */
  baseURL: string
  model: string
  /** Servers that need none (a local vLLM or Ollama) get a placeholder: the `openai` package insists on one. */
  apiKey?: string
  prices?: PriceTable | null
  /** Retries of one HTTP request on 408/409/429/5xx and connection errors, by the openai client (Retry-After honoured up to 60 s). */
  maxRetries?: number
  /** Per-request timeout in ms (each attempt). */
  timeoutMs?: number
  /** Calls in flight at once across everything this client runs. */
  concurrency?: number
  /** Extra attempts after an answer that is not valid JSON for the schema, each with the error appended. */
  jsonRetries?: number
  /** Ask for `response_format: json_object` (default true; some compatible servers reject it: set false). */
  jsonMode?: boolean
}

export const LLM_ENV_VARS = ['LLM_BASE_URL', 'LLM_MODEL', 'LLM_API_KEY', 'LLM_PRICE_IN', 'LLM_PRICE_OUT'] as const

/**
 * LLM_BASE_URL and LLM_MODEL (both needed), LLM_API_KEY, LLM_PRICE_IN / LLM_PRICE_OUT (per million tokens; both or
 * neither), LLM_CONCURRENCY, LLM_TIMEOUT_MS, LLM_MAX_RETRIES, LLM_JSON_MODE=false. Null when no LLM is configured.
 */
export function llmConfigFromEnv(env: Record<string, string | undefined> = process.env): LlmConfig | null {
  const baseURL = env.LLM_BASE_URL?.trim()
  const model = env.LLM_MODEL?.trim()
  if (!baseURL || !model) return null
  const num = (name: string, positive = false): number | undefined => {
    const raw = env[name]?.trim()
    if (!raw) return undefined
    const v = Number(raw)
    if (!Number.isFinite(v) || v < 0 || (positive && v === 0))
      throw new Error(`${name} must be a ${positive ? 'positive' : 'non-negative'} number, got "${raw}"`)
    return v
  }
  const priceIn = num('LLM_PRICE_IN')
  const priceOut = num('LLM_PRICE_OUT')
  if ((priceIn === undefined) !== (priceOut === undefined))
    throw new Error('set both LLM_PRICE_IN and LLM_PRICE_OUT (per million tokens), or neither')
  return {
    baseURL,
    model,
    apiKey: env.LLM_API_KEY?.trim() || undefined,
    prices:
      priceIn !== undefined
        ? { inputPerMillion: priceIn, outputPerMillion: priceOut!, currency: env.LLM_PRICE_CURRENCY?.trim() || 'USD' }
        : null,
    concurrency: num('LLM_CONCURRENCY', true),
    timeoutMs: num('LLM_TIMEOUT_MS', true),
    maxRetries: num('LLM_MAX_RETRIES'),
    jsonMode: env.LLM_JSON_MODE ? !/^(0|false|off|no)$/i.test(env.LLM_JSON_MODE.trim()) : undefined
  }
}

/** The answer was not JSON of the expected shape, after every retry. Carries the last raw text for the report. */
export class LlmMalformedOutputError extends Error {
  constructor(
    readonly step: string,
    readonly raw: string,
    readonly attempts: number,
    readonly reason: string
  ) {
    super(`LLM step ${step}: no valid JSON answer after ${attempts} attempt(s): ${reason}`)
    this.name = 'LlmMalformedOutputError'
  }
}

/** The endpoint failed (HTTP error after the client's retries, timeout, connection refused). */
export class LlmRequestError extends Error {
  constructor(
    readonly step: string,
    readonly status: number | null,
    message: string
  ) {
    super(`LLM step ${step}: ${message}`)
    this.name = 'LlmRequestError'
  }
}

/** A counting semaphore: at most `limit` holders at a time, served in arrival order. */
export class Semaphore {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`concurrency must be >= 1, got ${limit}`)
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>(ok => this.waiting.push(ok))
    else this.active++
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next)
        next() // the slot passes straight to the next waiter
      else this.active--
    }
  }
}

export interface ChatRequest {
  /** The ledger key: calls of one step are summed together. */
  step: string
  messages: ChatMessage[]
  temperature?: number
  maxTokens?: number
}

export interface JsonAnswer<T> {
  value: T
  raw: string
  usage: TokenUsage
  attempts: number
}

/** The JSON object in an answer: code fences and prose around it are tolerated (small models add them). */
export function extractJson(text: string): unknown {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text)
  const body = (fenced ? fenced[1] : text).trim()
  try {
    return JSON.parse(body)
  } catch (first) {
    const open = body.search(/[[{]/)
    const close = Math.max(body.lastIndexOf('}'), body.lastIndexOf(']'))
    if (open >= 0 && close > open) return JSON.parse(body.slice(open, close + 1))
    throw first
  }
}

export interface LlmClientOptions {
  /** A fetch for the openai client (tests, proxies). */
  fetch?: typeof globalThis.fetch
  ledger?: UsageLedger
}

export class LlmClient {
  readonly config: Required<Omit<LlmConfig, 'apiKey' | 'prices'>> &
    Pick<LlmConfig, 'apiKey'> & { prices: PriceTable | null }
  /** The `openai` package, imported on the first call rather than with this module (the API's heaviest import). */
  private openaiLoad?: Promise<{ client: OpenAI; OpenAI: typeof OpenAI }>
  private readonly fetchOption?: typeof globalThis.fetch
  private readonly gate: Semaphore
  // Reported vs counted tokens over this client's answered calls: the server's tokenizer relative to countTokens.
  private readonly seen = { reportedIn: 0, countedIn: 0, reportedOut: 0, countedOut: 0 }

  constructor(config: LlmConfig, options: LlmClientOptions = {}) {
    this.config = {
      baseURL: config.baseURL,
      model: config.model,
      apiKey: config.apiKey,
      prices: config.prices ?? null,
      maxRetries: config.maxRetries ?? 3,
      timeoutMs: config.timeoutMs ?? 60_000,
      concurrency: config.concurrency ?? 4,
      jsonRetries: config.jsonRetries ?? 2,
      jsonMode: config.jsonMode ?? true
    }
    this.fetchOption = options.fetch
    this.gate = new Semaphore(this.config.concurrency)
  }

  private openai(): Promise<{ client: OpenAI; OpenAI: typeof OpenAI }> {
    return (this.openaiLoad ??= import('openai').then(({ default: OpenAI }) => ({
      OpenAI,
      client: new OpenAI({
        baseURL: this.config.baseURL,
        apiKey: this.config.apiKey || 'not-needed',
        maxRetries: this.config.maxRetries,
        timeout: this.config.timeoutMs,
        ...(this.fetchOption ? { fetch: this.fetchOption } : {})
      })
    })))
  }

  get model(): string {
    return this.config.model
  }
  get prices(): PriceTable | null {
    return this.config.prices
  }

  /**
   * How the server's token counts compare with countTokens, learnt from the usage it reported (input once 500, output once 100
   * counted tokens have been seen; 1 before). Dry runs multiply their counts by it.
   */
  tokenScale(): TokenScale {
    const { reportedIn, countedIn, reportedOut, countedOut } = this.seen
    return {
      input: countedIn >= 500 ? reportedIn / countedIn : 1,
      output: countedOut >= 100 ? reportedOut / countedOut : 1
    }
  }

  /** A fresh ledger priced with this client's table: one per request, so each result states its own cost. */
  newLedger(): UsageLedger {
    return new UsageLedger(this.config.prices)
  }

  /** One chat completion (through the concurrency gate); usage is recorded in `ledger` under the request's step. */
  async chat(req: ChatRequest, ledger: UsageLedger): Promise<{ text: string; usage: TokenUsage }> {
    return this.gate.run(async () => {
      let completion: OpenAI.Chat.Completions.ChatCompletion
      const { client, OpenAI } = await this.openai()
      try {
        completion = await client.chat.completions.create({
          model: this.config.model,
          messages: req.messages,
          temperature: req.temperature ?? 0,
          ...(req.maxTokens ? { max_tokens: req.maxTokens } : {}),
          ...(this.config.jsonMode ? { response_format: { type: 'json_object' as const } } : {})
        })
      } catch (err) {
        const status = err instanceof OpenAI.APIError ? (err.status ?? null) : null
        const what =
          err instanceof OpenAI.APIConnectionTimeoutError
            ? `timed out after ${this.config.timeoutMs} ms`
            : err instanceof OpenAI.APIError && err.status
              ? `HTTP ${err.status} from ${this.config.baseURL}: ${err.message}`
              : `${(err as Error).message}`
        throw new LlmRequestError(req.step, status, `${what} (after up to ${this.config.maxRetries} retries)`)
      }
      const text = completion.choices?.[0]?.message?.content ?? ''
      // Servers that report no usage are counted by our own rule, and the ledger says so.
      const reported = completion.usage
      const usage = reported
        ? { inputTokens: reported.prompt_tokens ?? 0, outputTokens: reported.completion_tokens ?? 0 }
        : { inputTokens: countChatTokens(req.messages), outputTokens: countTokens(text) }
      ledger.record(req.step, usage, !reported)
      if (reported) {
        this.seen.reportedIn += usage.inputTokens
        this.seen.countedIn += countChatTokens(req.messages)
        this.seen.reportedOut += usage.outputTokens
        this.seen.countedOut += countTokens(text)
      }
      return { text, usage }
    })
  }

  /**
   * A chat call whose answer must be JSON matching `schema`. A malformed answer is retried up to `jsonRetries` times
   * with the bad answer and the error appended (so the model can correct itself); then LlmMalformedOutputError.
   */
  async chatJson<S extends z.ZodType>(
    schema: S,
    req: ChatRequest,
    ledger: UsageLedger
  ): Promise<JsonAnswer<z.infer<S>>> {
    const messages = [...req.messages]
    const total = { inputTokens: 0, outputTokens: 0 }
    const attempts = this.config.jsonRetries + 1
    let raw = ''
    let reason = ''
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const { text, usage } = await this.chat({ ...req, messages }, ledger)
      total.inputTokens += usage.inputTokens
      total.outputTokens += usage.outputTokens
      raw = text
      let parsed: unknown
      try {
        parsed = extractJson(text)
      } catch (err) {
        reason = `not JSON (${(err as Error).message})`
      }
      if (parsed !== undefined) {
        const checked = schema.safeParse(parsed)
        if (checked.success) return { value: checked.data, raw, usage: total, attempts: attempt }
        reason = `JSON of the wrong shape: ${checked.error.issues
          .slice(0, 3)
          .map(i => `${i.path.join('.') || '(root)'}: ${i.message}`)
          .join('; ')}`
      }
      messages.push(
        { role: 'assistant', content: text.slice(0, 2000) },
        {
          role: 'user',
          content: `That answer was invalid: ${reason}. Answer again with only the JSON object, in the format asked.`
        }
      )
    }
    throw new LlmMalformedOutputError(req.step, raw, attempts, reason)
  }
}

/** The client from the environment, or null when LLM_BASE_URL / LLM_MODEL are not set. */
export function llmFromEnv(env: Record<string, string | undefined> = process.env): LlmClient | null {
  const config = llmConfigFromEnv(env)
  return config ? new LlmClient(config) : null
}

/** A failed LLM item as results report it (malformed output keeps its raw text, cut). */
export function failedItem(
  err: unknown,
  step: string,
  item: string
): { step: string; item: string; error: string; kind: 'malformed-output' | 'request-failed'; raw?: string } {
  if (err instanceof LlmMalformedOutputError)
    return { step, item, error: err.message, kind: 'malformed-output', raw: err.raw.slice(0, 2000) }
  if (err instanceof LlmRequestError) return { step, item, error: err.message, kind: 'request-failed' }
  throw err // anything else is a bug or a store failure, not a bad LLM answer
}
