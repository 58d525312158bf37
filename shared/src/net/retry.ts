/**
 * @module Retrying idempotent HTTP requests on connection resets, with bounded exponential backoff. A pooled
 * keep-alive socket can be closed by the server just as the client reuses it (the request is written, the answer
 * is a reset): nothing was processed, so an idempotent request is safe to send again on a fresh connection.
 * Web-standard fetch only (runs in Node, Workers and browsers).
 */

/** Error codes (undici and Node sockets) that mean the connection died under the request. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])
/** The same, where only the message says it (undici's 'other side closed', Node's 'socket hang up'). */
const RESET_MESSAGE = /other side closed|socket hang up|ECONNRESET|EPIPE/i

/** Whether a fetch error is a connection reset, looking down the `cause` chain (undici wraps it in `TypeError: fetch failed`). */
export function isConnectionReset(err: unknown): boolean {
  let e: unknown = err
  for (let depth = 0; depth < 6 && e && typeof e === 'object'; depth++) {
    const { code, message, name } = e as { code?: unknown; message?: unknown; name?: unknown }
    if (name === 'AbortError' || name === 'TimeoutError') return false
    if (typeof code === 'string' && RESET_CODES.has(code)) return true
    if (typeof message === 'string' && RESET_MESSAGE.test(message)) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/**
 * Whether sending the request twice has the effect of sending it once (RFC 9110 idempotent methods), or the
 * request carries an Idempotency-Key that makes the server answer a repeat with the first answer.
 */
export function isRetriable(method: string, headers: HeadersInit | undefined): boolean {
  const m = method.toUpperCase()
  if (m === 'GET' || m === 'HEAD' || m === 'DELETE' || m === 'OPTIONS' || m === 'PUT') return true
  return new Headers(headers).has('idempotency-key')
}

export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  retries?: number
  /** Delay before the first retry; doubled each time (default 100 ms). */
  baseDelayMs?: number
  /** Cap on one delay (default 2 s). */
  maxDelayMs?: number
  /** Told before each retry (logging). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown; method: string; url: string }) => void
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

/** The delay before retry number `attempt` (1-based): exponential, capped, with jitter in [50%, 100%]. */
export function backoffMs(attempt: number, opts: RetryOptions = {}, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs ?? 2_000, (opts.baseDelayMs ?? 100) * 2 ** (attempt - 1))
  return Math.round(ceiling * (0.5 + 0.5 * random()))
}

/** A body that can be sent again as it is (a stream cannot). */
function replayable(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    (typeof Blob !== 'undefined' && body instanceof Blob)
  )
}

/**
 * `fetch` that retries idempotent requests (see isRetriable) whose connection was reset (see isConnectionReset),
 * at most `retries` times with exponential backoff; any other error, or an answer of any status, returns at once.
 */
export function retryingFetch(
  fetchFn: typeof globalThis.fetch = globalThis.fetch,
  opts: RetryOptions = {}
): typeof globalThis.fetch {
  const retries = opts.retries ?? 4
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>(r => setTimeout(r, ms)))
  const random = opts.random ?? Math.random
  return async (input, init) => {
    const request = input instanceof Request ? input : undefined
    const method = init?.method ?? request?.method ?? 'GET'
    const headers = init?.headers ?? request?.headers
    const canRetry = isRetriable(method, headers) && replayable(init?.body) && !request?.body
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchFn(input, init)
      } catch (error) {
        const signal = init?.signal ?? request?.signal
        if (!canRetry || attempt > retries || signal?.aborted || !isConnectionReset(error)) throw error
        const delayMs = backoffMs(attempt, opts, random)
        opts.onRetry?.({ attempt, delayMs, error, method, url: request?.url ?? String(input) })
        await sleep(delayMs)
      }
    }
  }
}
