/**
 * @module The local server over real sockets: an idle keep-alive connection outlives Node's default 5 s (which raced
 * the SDK's 5 s polling into ECONNRESET); requests Node or the app refuse for their size (headers, URL, body) get a
 * problem+json answer the client can read, not a closed socket; and the server is healthy afterwards.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocal, type LocalServer } from './local-server.ts'
import { MAX_BODY_BYTES } from './app.ts'
import { SERVER_KEEP_ALIVE_MS } from '@latentbase/shared/net/node-server'

let dataDir: string
let server: LocalServer
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'latentbase-http-'))
  server = await startLocal({ dataDir, port: 0, encoders: new Map(), log: () => {} })
})
after(async () => {
  await server.close()
  await rm(dataDir, { recursive: true, force: true })
})

test('an idle keep-alive connection outlives 5 s and serves the next request', async () => {
  const socket = connect(server.port, '127.0.0.1')
  try {
    let received = ''
    let closed = false
    socket.on('data', d => {
      received += d.toString('latin1')
    })
    socket.on('close', () => {
      closed = true
    })
    await new Promise<void>((ok, fail) => {
      socket.once('connect', ok)
      socket.once('error', fail)
    })
    const ask = async () => {
      received = ''
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n')
      for (let i = 0; i < 200 && !/\r\n\r\n[\s\S]*\}/.test(received); i++) await new Promise(r => setTimeout(r, 10))
      return received
    }
    const first = await ask()
    assert.match(first, /^HTTP\/1\.1 200/)
    assert.match(first, new RegExp(`keep-alive: timeout=${SERVER_KEEP_ALIVE_MS / 1000}`, 'i'))
    await new Promise(r => setTimeout(r, 5_500))
    assert.equal(closed, false, 'the server closed an idle connection after 5 s')
    assert.match(await ask(), /^HTTP\/1\.1 200/)
  } finally {
    socket.destroy()
  }
})

async function answer(path: string, init?: RequestInit) {
  const res = await fetch(server.url + path, init)
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as { code?: string; detail?: string }
  }
}

test('oversized headers, URLs and bodies are answered with problem+json, and the server stays healthy', async () => {
  const header = await answer('/health', { headers: { 'x-filler': 'a'.repeat(200_000) } })
  assert.deepEqual(
    [header.status, header.type, header.body.code],
    [431, 'application/problem+json', 'headers-too-large']
  )
  const url = await answer(`/datasets/${'a'.repeat(100_000)}`)
  assert.equal(url.status, 431)
  assert.equal(url.type, 'application/problem+json')
  for (const path of ['/datasets', '/clusters', '/diff/hypotheses']) {
    const big = await answer(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"x":"${'a'.repeat(MAX_BODY_BYTES + 10)}"}`
    })
    assert.deepEqual([big.status, big.type, big.body.code], [413, 'application/problem+json', 'body-too-large'], path)
  }
  const health = await answer('/health')
  assert.equal(health.status, 200)
  assert.equal((await answer('/datasets')).status, 200)
})

test('malformed HTTP gets a 400 problem+json on the socket', async () => {
  const socket = connect(server.port, '127.0.0.1')
  let received = ''
  socket.on('data', d => {
    received += d.toString('latin1')
  })
  const closed = new Promise<void>(ok => socket.once('close', () => ok()))
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n')
  await closed
  assert.match(received, /^HTTP\/1\.1 400 Bad Request\r\n/)
  assert.match(received, /content-type: application\/problem\+json/)
  assert.match(received, /"code":"malformed-http"/)
})
