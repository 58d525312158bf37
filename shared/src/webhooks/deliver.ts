/** @module One signed Standard Webhooks delivery attempt, and the spec's retry schedule; the queue worker drives the retries. */
import { signWebhook } from './sign.ts'

/** Delay before each attempt, from the Standard Webhooks spec: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
export const WEBHOOK_RETRY_SCHEDULE_SECONDS: readonly number[] = Object.freeze([
  0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400
])

/**
 * Seconds to wait before attempt number `attempt` (0-based: attempt 0 is the first delivery, at once;
 * after n failed attempts call nextRetryDelay(n)). Undefined when the schedule is used up: give up.
 */
export function nextRetryDelay(attempt: number): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be an integer >= 0, got ${attempt}`)
  return WEBHOOK_RETRY_SCHEDULE_SECONDS[attempt]
}

export interface WebhookDelivery {
  url: string
  secret: string
  /** The webhook-id: the same on every retry, so receivers can deduplicate. */
  messageId: string
  /**
   * Seconds since the epoch of this attempt, not of the event: receivers refuse signatures more than
   * ~5 min off their clock, so a retry hours later must be signed with a fresh timestamp.
   */
  timestamp: number
  /** Sent byte for byte as signed; an object is JSON-serialized first. */
  body: string | object
}

export interface DeliverOptions {
  fetch?: typeof globalThis.fetch
  timeoutMs?: number
}

export interface DeliveryResult {
  ok: boolean
  status?: number
  /** False on success and on 410 Gone (the receiver asked us to stop). */
  retry: boolean
  error?: string
}

export async function deliverWebhook(delivery: WebhookDelivery, options: DeliverOptions = {}): Promise<DeliveryResult> {
  const doFetch = options.fetch ?? globalThis.fetch
  const timeoutMs = options.timeoutMs ?? 10_000
  const body = typeof delivery.body === 'string' ? delivery.body : JSON.stringify(delivery.body)
  const timestamp = Math.floor(delivery.timestamp)
  const signature = await signWebhook(delivery.secret, delivery.messageId, timestamp, body)
  let response: Response
  try {
    response = await doFetch(delivery.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': delivery.messageId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature
      },
      body,
      // A redirect could send the signed event somewhere the owner never registered.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs)
    })
  } catch (err) {
    const e = err as Error
    const timedOut = e?.name === 'TimeoutError' || e?.name === 'AbortError'
    const cause = (e as { cause?: { code?: string; message?: string } })?.cause
    const detail = timedOut
      ? `no response within ${timeoutMs} ms`
      : [e?.message, cause?.code ?? cause?.message].filter(Boolean).join(': ')
    return { ok: false, retry: true, error: `request failed: ${detail}` }
  }
  // The receiver's answer is not used; free the connection.
  await response.body?.cancel().catch(() => {})
  const status = response.status
  if (status >= 200 && status < 300) return { ok: true, status, retry: false }
  if (status === 410)
    return { ok: false, status, retry: false, error: 'endpoint answered 410 Gone: stop sending to it' }
  // Browsers and workerd hide a manual redirect behind status 0 / type 'opaqueredirect'.
  if (response.type === 'opaqueredirect' || (status >= 300 && status < 400)) {
    const location = response.headers.get('location')
    return {
      ok: false,
      status,
      retry: true,
      error: `endpoint answered a redirect (${status}${location ? ` to ${location}` : ''}); redirects are not followed`
    }
  }
  return { ok: false, status, retry: true, error: `endpoint answered ${status}` }
}
