/**
 * @module Keep-alive timeouts for our Node HTTP servers. Node closes an idle keep-alive connection after 5 s by
 * default; a client that reuses a pooled connection at that moment (the SDK polling every 5 s, a slow event loop)
 * writes its request into a closing socket and gets ECONNRESET. The server must hold idle connections longer than
 * any client keeps them: undici keeps them 4 s (or the server's `Keep-Alive: timeout` hint less 2 s), and load
 * balancers in front of a deployment idle out at 60 s (AWS ALB), so 65 s; the headers timeout must exceed it.
 */

export const SERVER_KEEP_ALIVE_MS = 65_000
export const SERVER_HEADERS_TIMEOUT_MS = 66_000

/** Sets a Node http.Server's keepAliveTimeout and headersTimeout (see the module comment); returns it. */
export function holdIdleConnections<S extends { keepAliveTimeout: number; headersTimeout: number }>(server: S): S {
  server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS
  server.headersTimeout = SERVER_HEADERS_TIMEOUT_MS
  return server
}
