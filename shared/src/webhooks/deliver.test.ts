/** @module Tests for webhook delivery against a real HTTP server on loopback, checked with the reference `standardwebhooks` verifier. */
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { deliverWebhook, nextRetryDelay, WEBHOOK_RETRY_SCHEDULE_SECONDS } from './deliver.ts'
import { generateWebhookSecret } from './sign.ts'

interface Received {
  path: string
  method: string
  headers: IncomingHttpHeaders
  body: string
}

/** Each path answers with the statuses queued for it, in turn; the last one repeats. */
const script = new Map<string, number[]>()
const received: Received[] = []
let server: Server
let base: string

before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', c => (body += c))
    req.on('end', () => {
      const path = req.url ?? '/'
      received.push({ path, method: req.method ?? '', headers: req.headers, body })
      if (path === '/slow') return void setTimeout(() => res.end(), 2000)
      const statuses = script.get(path) ?? [200]
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]
      if (status >= 300 && status < 400) res.setHeader('location', `${base}/elsewhere`)
      res.statusCode = status
      res.end('{"ignored":true}')
    })
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => new Promise<void>(r => server.close(() => r())))

const hits = (path: string) => received.filter(r => r.path === path)
const event = (secret: string, path: string) => ({
  url: `${base}${path}`,
  secret,
  messageId: `msg_${path.slice(1)}`,
  timestamp: Math.floor(Date.now() / 1000),
  body: JSON.stringify({ type: 'dataset.ready', data: { id: 'ds_1' } })
})

describe('deliverWebhook', () => {
  it('POSTs JSON with webhook-* headers that standardwebhooks verifies', async () => {
    const secret = generateWebhookSecret()
    const delivery = event(secret, '/ok')
    const result = await deliverWebhook(delivery)
    assert.deepEqual(result, { ok: true, status: 200, retry: false })
    const [hit] = hits('/ok')
    assert.equal(hit.method, 'POST')
    assert.equal(hit.headers['content-type'], 'application/json')
    assert.equal(hit.headers['webhook-id'], 'msg_ok')
    assert.equal(hit.headers['webhook-timestamp'], String(delivery.timestamp))
    assert.equal(hit.body, delivery.body)
    const verified = new Webhook(secret).verify(hit.body, hit.headers as Record<string, string>)
    assert.deepEqual(verified, JSON.parse(delivery.body))
    assert.throws(() => new Webhook(generateWebhookSecret()).verify(hit.body, hit.headers as Record<string, string>))
  })

  it('a 500 asks for a retry, and the retry with the same id succeeds', async () => {
    script.set('/flaky', [500, 204])
    const secret = generateWebhookSecret()
    const first = await deliverWebhook(event(secret, '/flaky'))
    assert.equal(first.ok, false)
    assert.equal(first.status, 500)
    assert.equal(first.retry, true)
    assert.match(first.error!, /500/)
    const second = await deliverWebhook(event(secret, '/flaky'))
    assert.deepEqual(second, { ok: true, status: 204, retry: false })
    assert.deepEqual(
      hits('/flaky').map(h => h.headers['webhook-id']),
      ['msg_flaky', 'msg_flaky']
    )
  })

  it('does not follow a redirect and counts it as a failure', async () => {
    script.set('/moved', [301])
    const result = await deliverWebhook(event(generateWebhookSecret(), '/moved'))
    assert.equal(result.ok, false)
    assert.equal(result.status, 301)
    assert.equal(result.retry, true)
    assert.match(result.error!, /redirect/)
    assert.equal(hits('/moved').length, 1)
    assert.equal(hits('/elsewhere').length, 0, 'the redirect target was never called')
  })

  it('410 Gone stops retries; 429 and other 4xx retry', async () => {
    script.set('/gone', [410])
    script.set('/busy', [429])
    script.set('/bad', [400])
    const secret = generateWebhookSecret()
    const gone = await deliverWebhook(event(secret, '/gone'))
    assert.equal(gone.ok, false)
    assert.equal(gone.retry, false)
    assert.equal(gone.status, 410)
    assert.equal((await deliverWebhook(event(secret, '/busy'))).retry, true)
    assert.equal((await deliverWebhook(event(secret, '/bad'))).retry, true)
  })

  it('a refused connection or a timeout asks for a retry', async () => {
    const closed = createServer()
    await new Promise<void>(r => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>(r => closed.close(() => r()))
    const refused = await deliverWebhook({ ...event(generateWebhookSecret(), '/x'), url: `http://127.0.0.1:${port}/` })
    assert.equal(refused.ok, false)
    assert.equal(refused.retry, true)
    assert.equal(refused.status, undefined)
    assert.match(refused.error!, /ECONNREFUSED/)
    const t0 = Date.now()
    const slow = await deliverWebhook(event(generateWebhookSecret(), '/slow'), { timeoutMs: 200 })
    assert.ok(Date.now() - t0 < 1500)
    assert.deepEqual([slow.ok, slow.retry], [false, true])
    assert.match(slow.error!, /200 ms/)
  })

  it('uses the fetch it is given', async () => {
    let seen: Request | undefined
    const fakeFetch: typeof fetch = async (input, init) => {
      seen = new Request(input, init)
      return new Response(null, { status: 202 })
    }
    const result = await deliverWebhook(
      { ...event(generateWebhookSecret(), '/unused'), body: { a: 1 } },
      { fetch: fakeFetch }
    )
    assert.deepEqual(result, { ok: true, status: 202, retry: false })
    assert.equal(await seen!.text(), '{"a":1}')
    assert.equal(seen!.redirect, 'manual')
  })
})

describe('retry schedule', () => {
  it('follows the Standard Webhooks schedule and ends', () => {
    assert.deepEqual(WEBHOOK_RETRY_SCHEDULE_SECONDS, [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400])
    assert.equal(nextRetryDelay(0), 0)
    assert.equal(nextRetryDelay(1), 5)
    assert.equal(nextRetryDelay(9), 86400)
    assert.equal(nextRetryDelay(10), undefined)
    assert.throws(() => nextRetryDelay(-1), RangeError)
    assert.throws(() => (WEBHOOK_RETRY_SCHEDULE_SECONDS as number[]).push(1))
  })
})
