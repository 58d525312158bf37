/**
 * @module Settings for our Node HTTP servers (local server, demo corpus, benches). Keep-alive: Node closes an idle
 * connection after 5 s by default; a client that reuses a pooled connection at that moment (the SDK polling every
 * 5 s, a slow event loop) writes its request into a closing socket and gets ECONNRESET. The server must hold idle
 * connections longer than any client keeps them: undici keeps them 4 s (or the server's `Keep-Alive: timeout` hint
 * less 2 s), load balancers in front of a deployment idle out at 60 s (AWS ALB), so 65 s; the headers timeout must
 * exceed it. Requests Node refuses before the app sees them (headers over 16 KB, malformed HTTP) get a
 * problem+json answer instead of Node's bare one, and the socket is closed gently so the client reads it.
 */
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'

export const SERVER_KEEP_ALIVE_MS = 65_000
export const SERVER_HEADERS_TIMEOUT_MS = 66_000
/** How long a refused connection may go on sending (its body, the rest of its headers) before it is cut. */
const LINGER_MS = 2_000

const REFUSALS: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'Request Header Fields Too Large',
    'headers-too-large',
    "request headers (or the URL) are over the server's 16 KB limit: send long values in a POST body"
  ],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Content Too Large', 'body-too-large', 'chunk extensions too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request-timeout', 'the request was not received in time']
}

/** The raw HTTP answer to a request Node's parser refused (code from the parser error). */
export function refusalResponse(code: string | undefined): string {
  const [status, title, problemCode, detail] = REFUSALS[code ?? ''] ?? [
    400,
    'Bad Request',
    'malformed-http',
    `the request is not valid HTTP/1.1 (${code ?? 'parse error'})`
  ]
  const body = JSON.stringify({ type: 'about:blank', title, status, detail, code: problemCode })
  return `HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
}

/** Sets the keep-alive and headers timeouts and the problem+json answer to refused requests (see the module comment); returns the server. */
export function configureNodeServer<S extends Server>(server: S): S {
  server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS
  server.headersTimeout = SERVER_HEADERS_TIMEOUT_MS
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    // Answer, then stop writing but keep reading a while: closing at once would reset the connection under a
    // client still sending, which then sees EPIPE / 'other side closed' instead of this answer.
    socket.end(refusalResponse(err.code))
    socket.on('error', () => {})
    socket.resume()
    setTimeout(() => socket.destroy(), LINGER_MS).unref()
  })
  return server
}
