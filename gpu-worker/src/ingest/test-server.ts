/** @module Test kit for source tests: a tiny HTTP server on 127.0.0.1 (fixed routes, a stalled body, a hanging response) and a SourceError matcher. */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SourceError } from './open-source.ts'

export interface Route {
  status?: number
  body: Uint8Array | string
  headers?: Record<string, string>
}

export interface TestServer {
  url: string
  close(): Promise<void>
}

/** Serves `routes` by path; `/stall` sends headers and part of a body then goes quiet; `/hang` never answers. */
export async function startTestServer(routes: Record<string, Route>): Promise<TestServer> {
  const open = new Set<ServerResponse>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]
    open.add(res)
    res.on('close', () => open.delete(res))
    if (path === '/stall') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"text":"a"}\n')
      return
    }
    if (path === '/hang') return
    const route = routes[path]
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('not found')
      return
    }
    res.writeHead(route.status ?? 200, route.headers ?? { 'content-type': 'application/octet-stream' })
    res.end(route.body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>(resolve => {
        for (const res of open) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** For assert.rejects / assert.throws: a SourceError with this code (and a message matching `message`). */
export function isSourceError(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message) assert.match(err.message, message)
    return true
  }
}
