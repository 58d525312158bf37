/** @module Our Web Crypto SigV4 signs exactly as the AWS SDK's own signer (@smithy/signature-v4) does. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { signRequest } from './sigv4.ts'

/** The SDK's signer takes a hash constructor; node:crypto provides one. */
class NodeSha256 {
  private h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>
  constructor(secret?: string | Uint8Array) {
    this.h = secret ? createHmac('sha256', secret) : createHash('sha256')
  }
  update(data: string | Uint8Array) {
    this.h.update(data)
  }
  async digest() {
    return new Uint8Array(this.h.digest())
  }
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }

for (const c of [
  {
    name: 'SQS JSON SendMessage',
    url: 'https://sqs.us-east-1.amazonaws.com/',
    body: '{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123/encode","MessageBody":"{\\"kind\\":\\"encode\\"}"}',
    token: undefined
  },
  {
    name: 'a path, a query string and a session token',
    url: 'https://example.amazonaws.com/a%20b/c?z=1&a=x y&a=%2F',
    body: 'é',
    token: 'FwoGZXIvYXdzEXAMPLE'
  }
]) {
  test(`signature equals @smithy/signature-v4's: ${c.name}`, async () => {
    const date = new Date('2026-11-22T07:00:00Z')
    const creds = { ...credentials, ...(c.token ? { sessionToken: c.token } : {}) }
    const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' }
    const ours = await signRequest({
      method: 'POST',
      url: c.url,
      headers,
      body: c.body,
      region: 'us-east-1',
      service: 'sqs',
      credentials: creds,
      date
    })

    const url = new URL(c.url)
    const query: Record<string, string | string[]> = {}
    for (const [k, v] of url.searchParams) query[k] = k in query ? [...([] as string[]).concat(query[k]), v] : v
    const signer = new SignatureV4({
      credentials: creds,
      region: 'us-east-1',
      service: 'sqs',
      sha256: NodeSha256 as never
    })
    const signed = (await signer.sign(
      {
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        path: decodeURIComponent(url.pathname),
        query,
        headers: { host: url.host, ...headers, 'x-amz-content-sha256': ours['x-amz-content-sha256'] },
        body: c.body
      } as never,
      { signingDate: date }
    )) as unknown as { headers: Record<string, string> }
    assert.equal(ours.authorization, signed.headers.authorization)
    assert.equal(ours['x-amz-date'], signed.headers['x-amz-date'])
  })
}
