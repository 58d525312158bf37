/**
 * @module The local server holds an idle keep-alive connection longer than Node's default 5 s (which raced the SDK's
 * 5 s polling into ECONNRESET): a request on a connection idle for 5.5 s is answered on that same connection.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocal } from './local-server.ts'
import { SERVER_KEEP_ALIVE_MS } from '@latentbase/shared/net/keep-alive'

test('an idle keep-alive connection outlives 5 s and serves the next request', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'latentbase-keepalive-'))
  const server = await startLocal({ dataDir, port: 0, encoders: new Map(), log: () => {} })
  const socket = connect(server.port, '127.0.0.1')
  try {
    let received = ''
    let closed = false
    socket.on('data', (d) => { received += d.toString('latin1') })
    socket.on('close', () => { closed = true })
    await new Promise<void>((ok, fail) => { socket.once('connect', ok); socket.once('error', fail) })
    const ask = async () => {
      received = ''
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n')
      for (let i = 0; i < 200 && !/\r\n\r\n[\s\S]*\}/.test(received); i++) await new Promise((r) => setTimeout(r, 10))
      return received
    }
    const first = await ask()
    assert.match(first, /^HTTP\/1\.1 200/)
    assert.match(first, new RegExp(`keep-alive: timeout=${SERVER_KEEP_ALIVE_MS / 1000}`, 'i'))
    await new Promise((r) => setTimeout(r, 5_500))
    assert.equal(closed, false, 'the server closed an idle connection after 5 s')
    assert.match(await ask(), /^HTTP\/1\.1 200/)
  } finally {
    socket.destroy()
    await server.close()
    await rm(dataDir, { recursive: true, force: true })
  }
})
