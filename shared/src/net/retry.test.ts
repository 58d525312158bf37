/**
 * @module The connection-reset race, reproduced deterministically: a server that resets any connection a client
 * reuses (what a keep-alive timeout firing as the request arrives looks like to the client); plain fetch fails,
 * retryingFetch recovers idempotent requests and leaves the others alone.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { backoffMs, isConnectionReset, isRetriable, retryingFetch } from './retry.ts'

let server: Server
let base: string
/** Requests seen per socket; 'reused' resets the second request on a socket, 'always' resets every request. */
const seen = new WeakMap<Socket, number>()
let mode: 'reused' | 'always' | 'never' = 'reused'
let arrivals = 0
let resets = 0

before(async () => {
  server = createServer((req, res) => {
    arrivals++
    const n = (seen.get(req.socket) ?? 0) + 1
    seen.set(req.socket, n)
    req.resume()
    if (mode === 'always' || (mode === 'reused' && n >= 2)) {
      resets++
      req.socket.resetAndDestroy()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n }))
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})
after(() => {
  server.closeAllConnections()
  server.close()
})

const noSleep = { sleep: async () => {} }

test('reproduction: plain fetch on a pooled connection the server resets fails with a connection reset', async () => {
  mode = 'reused'
  const first = await fetch(`${base}/a`)
  assert.equal(first.status, 200)
  await first.text() // the connection goes back to the pool (on the next turn of the event loop)
  await new Promise(r => setTimeout(r, 20))
  const err = await fetch(`${base}/b`).then(
    () => null,
    (e: unknown) => e
  )
  assert.ok(err, 'the reused connection was reset, so fetch must fail')
  assert.equal((err as Error).message, 'fetch failed')
  assert.ok(isConnectionReset(err), `recognised as a reset: ${String((err as Error).cause)}`)
})

test('retryingFetch sends an idempotent request again on a fresh connection after a reset', async () => {
  mode = 'reused'
  const retried: number[] = []
  const f = retryingFetch(fetch, { ...noSleep, onRetry: i => retried.push(i.attempt) })
  const before = resets
  for (let i = 0; i < 5; i++) {
    const res = await f(`${base}/poll`, { method: i % 2 ? 'GET' : 'DELETE' })
    assert.equal(res.status, 200)
    await res.json()
  }
  assert.ok(resets > before, 'the server did reset reused connections during the run')
  assert.equal(retried.length, resets - before, 'each reset was retried once, and succeeded')
})

test('a POST is retried only with an Idempotency-Key', async () => {
  mode = 'reused'
  const f = retryingFetch(fetch, noSleep)
  await (await f(`${base}/warm`)).text() // leaves a pooled connection to reuse
  await new Promise(r => setTimeout(r, 20))
  const plainPost = await f(`${base}/datasets`, { method: 'POST', body: '{}' }).then(
    () => null,
    (e: unknown) => e
  )
  assert.ok(plainPost && isConnectionReset(plainPost), 'a POST without a key is not sent twice')
  await (await f(`${base}/warm`)).text()
  await new Promise(r => setTimeout(r, 20))
  const keyed = await f(`${base}/datasets`, { method: 'POST', body: '{}', headers: { 'Idempotency-Key': 'k1' } })
  assert.equal(keyed.status, 200)
})

test('retries are bounded: a server that always resets fails after retries + 1 attempts', async () => {
  mode = 'always'
  const start = arrivals
  const delays: number[] = []
  const f = retryingFetch(fetch, {
    retries: 3,
    sleep: async ms => {
      delays.push(ms)
    }
  })
  const err = await f(`${base}/x`).then(
    () => null,
    (e: unknown) => e
  )
  assert.ok(err && isConnectionReset(err))
  assert.equal(arrivals - start, 4)
  assert.equal(delays.length, 3)
  mode = 'reused'
})

test('other errors and aborted requests are not retried', async () => {
  let calls = 0
  const refused = retryingFetch(async () => {
    calls++
    throw new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    })
  }, noSleep)
  await assert.rejects(refused('http://127.0.0.1:9/'), /fetch failed/)
  assert.equal(calls, 1)
  calls = 0
  const controller = new AbortController()
  controller.abort()
  const reset = retryingFetch(async () => {
    calls++
    throw new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) })
  }, noSleep)
  await assert.rejects(reset('http://x/', { signal: controller.signal }))
  assert.equal(calls, 1)
})

test('classification and backoff', () => {
  assert.ok(
    isConnectionReset(
      new TypeError('fetch failed', {
        cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
      })
    )
  )
  assert.ok(isConnectionReset(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })))
  assert.ok(!isConnectionReset(new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND x') })))
  assert.ok(!isConnectionReset(new DOMException('aborted', 'AbortError')))
  assert.ok(isRetriable('get', undefined) && isRetriable('DELETE', {}) && isRetriable('HEAD', undefined))
  assert.ok(
    !isRetriable('POST', { 'content-type': 'application/json' }) && isRetriable('POST', { 'Idempotency-Key': 'k' })
  )
  const d = [1, 2, 3, 4, 5, 6, 7].map(a => backoffMs(a, {}, () => 1))
  assert.deepEqual(d, [100, 200, 400, 800, 1600, 2000, 2000])
  assert.equal(
    backoffMs(1, {}, () => 0),
    50
  )
})
