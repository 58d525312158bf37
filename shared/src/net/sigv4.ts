/**
 * @module AWS Signature Version 4 for fetch, on Web Crypto only: lets a Worker call AWS (SQS) without the AWS SDK or
 * node: modules. Covers what we send: one request with a body, headers we set, no query-string signing, no chunking.
 */
import { sha256HexAsync as sha256Hex } from '../util/sha256.ts'

export interface AwsCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface SignInput {
  method: string
  url: string
  headers: Record<string, string>
  body: string
  region: string
  service: string
  credentials: AwsCredentials
  /** Signing time (default now). */
  date?: Date
}

const utf8 = new TextEncoder()

function hex(bytes: ArrayBuffer | Uint8Array): string {
  let s = ''
  for (const b of new Uint8Array(bytes)) s += b.toString(16).padStart(2, '0')
  return s
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    'raw',
    key as Uint8Array<ArrayBuffer>,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign']
  )
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, utf8.encode(data)))
}

/** RFC 3986 encoding, as SigV4 wants it for path segments and query parts. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** The headers to send: the input's plus host, x-amz-date, x-amz-content-sha256, the session token and Authorization. */
export async function signRequest(input: SignInput): Promise<Record<string, string>> {
  const url = new URL(input.url)
  const now = input.date ?? new Date()
  const amzDate = now.toISOString().replace(/[:-]|\.\d{3}/g, '')
  const day = amzDate.slice(0, 8)
  const payloadHash = await sha256Hex(input.body)
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ')
  headers.host = url.host
  headers['x-amz-date'] = amzDate
  headers['x-amz-content-sha256'] = payloadHash
  if (input.credentials.sessionToken) headers['x-amz-security-token'] = input.credentials.sessionToken

  const names = Object.keys(headers).sort()
  const canonicalQuery = [...url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const canonicalPath =
    url.pathname
      .split('/')
      .map(seg => uriEncode(decodeURIComponent(seg)))
      .join('/') || '/'
  const canonical = [
    input.method.toUpperCase(),
    canonicalPath,
    canonicalQuery,
    names.map(n => `${n}:${headers[n]}\n`).join(''),
    names.join(';'),
    payloadHash
  ].join('\n')
  const scope = `${day}/${input.region}/${input.service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, await sha256Hex(canonical)].join('\n')
  let key = await hmac(utf8.encode(`AWS4${input.credentials.secretAccessKey}`), day)
  key = await hmac(key, input.region)
  key = await hmac(key, input.service)
  key = await hmac(key, 'aws4_request')
  const signature = hex(await hmac(key, toSign))
  const out: Record<string, string> = { ...headers }
  delete out.host // fetch sets it (and refuses to be told)
  out.authorization = `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`
  return out
}
