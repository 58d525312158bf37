/** @module Standard Webhooks signing and verification on Web Crypto only, so the same code runs in Node, Workers and the SDK. */

export const WEBHOOK_SECRET_PREFIX = 'whsec_'
export const DEFAULT_TOLERANCE_SECONDS = 300

export type WebhookVerificationReason =
  | 'missing-header'
  | 'invalid-timestamp'
  | 'timestamp-too-old'
  | 'timestamp-too-new'
  | 'bad-signature'
  | 'invalid-body'

export class WebhookVerificationError extends Error {
  readonly reason: WebhookVerificationReason
  constructor(reason: WebhookVerificationReason, message: string) {
    super(message)
    this.name = 'WebhookVerificationError'
    this.reason = reason
  }
}

/** `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  const key = new Uint8Array(32)
  crypto.getRandomValues(key)
  return WEBHOOK_SECRET_PREFIX + toBase64(key)
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the key being the base64 after `whsec_`. */
export async function signWebhook(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string
): Promise<string> {
  if (!Number.isInteger(timestampSeconds)) throw new TypeError('timestampSeconds must be an integer number of seconds')
  const key = await hmacKey(secret)
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${messageId}.${timestampSeconds}.${body}`))
  return `v1,${toBase64(new Uint8Array(mac))}`
}

export interface VerifyOptions {
  /** Allowed clock skew either way. */
  toleranceSeconds?: number
  /** The receiver's clock, for tests. */
  now?: Date | number
}

/**
 * Checks the `webhook-*` headers against the body and returns the parsed JSON body.
 * Throws WebhookVerificationError saying why not. Several space-separated signatures are allowed
 * (a sender rotating its secret); any one valid `v1` signature is enough.
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  body: string,
  options: VerifyOptions = {}
): Promise<unknown> {
  const get = headerGetter(headers)
  const id = get('webhook-id')
  const timestampHeader = get('webhook-timestamp')
  const signatureHeader = get('webhook-signature')
  const missing = [
    !id && 'webhook-id',
    !timestampHeader && 'webhook-timestamp',
    !signatureHeader && 'webhook-signature'
  ].filter(Boolean)
  if (!id || !timestampHeader || !signatureHeader) {
    throw new WebhookVerificationError('missing-header', `missing header(s): ${missing.join(', ')}`)
  }
  if (!/^\d+$/.test(timestampHeader.trim())) {
    throw new WebhookVerificationError(
      'invalid-timestamp',
      `webhook-timestamp is not a whole number of seconds: ${JSON.stringify(timestampHeader)}`
    )
  }
  const timestamp = Number(timestampHeader.trim())
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS
  const nowMs =
    options.now === undefined ? Date.now() : typeof options.now === 'number' ? options.now : options.now.getTime()
  const now = Math.floor(nowMs / 1000)
  if (now - timestamp > tolerance) {
    throw new WebhookVerificationError(
      'timestamp-too-old',
      `webhook-timestamp is ${now - timestamp} s old (tolerance ${tolerance} s)`
    )
  }
  if (timestamp - now > tolerance) {
    throw new WebhookVerificationError(
      'timestamp-too-new',
      `webhook-timestamp is ${timestamp - now} s in the future (tolerance ${tolerance} s)`
    )
  }

  const key = await hmacKey(secret)
  const signed = encoder.encode(`${id}.${timestamp}.${body}`)
  for (const entry of signatureHeader.split(' ')) {
    const comma = entry.indexOf(',')
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue
    const mac = fromBase64(entry.slice(comma + 1))
    // crypto.subtle.verify compares in constant time.
    if (mac && mac.length === 32 && (await crypto.subtle.verify('HMAC', key, mac, signed))) {
      if (body === '') return undefined
      try {
        return JSON.parse(body)
      } catch {
        throw new WebhookVerificationError('invalid-body', 'the signature is valid but the body is not JSON')
      }
    }
  }
  throw new WebhookVerificationError(
    'bad-signature',
    'no v1 signature in webhook-signature matches the body and secret'
  )
}

const encoder = new TextEncoder()

async function hmacKey(secret: string): Promise<CryptoKey> {
  const raw = fromBase64(secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret)
  if (!raw || raw.length === 0) throw new TypeError('webhook secret must be whsec_ followed by base64')
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
}

function headerGetter(
  headers: Headers | Record<string, string | string[] | undefined>
): (name: string) => string | undefined {
  if (typeof (headers as Headers).get === 'function') return name => (headers as Headers).get(name) ?? undefined
  const lower = new Map<string, string>()
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (v !== undefined) lower.set(k.toLowerCase(), Array.isArray(v) ? v.join(' ') : v)
  }
  return name => lower.get(name)
}

function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i])
  return btoa(s)
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    const s = atob(text)
    const out = new Uint8Array(s.length)
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
    return out
  } catch {
    return undefined
  }
}
