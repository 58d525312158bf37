/** @module The web interface's static files (the Vite build in web/dist) in front of the API on the local server: `/` and `/assets/*`; everything else goes to the API. */
import { readFile } from 'node:fs/promises'
import { join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where `npm ci` (postinstall) or `npm run build:web` writes the build. */
export const WEB_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url))

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2'
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Latentbase</title><body style="font:15px system-ui;padding:2rem">
<h1>The web interface is not built</h1><p>Run <code>npm run build:web</code> (it runs with <code>npm ci</code>), then reload.
The API answers as usual: see <a href="/openapi.json">/openapi.json</a>.</p>`

/**
 * Wraps the API's fetch: GET/HEAD of `/`, `/index.html` and `/assets/<file>` are answered from `dir`. Hashed assets are
 * cached for a year (their names change with their content); index.html is revalidated every time.
 */
export function withWebAssets(
  api: (req: Request) => Response | Promise<Response>,
  dir = WEB_DIST
): (req: Request) => Promise<Response> {
  const cache = new Map<string, Uint8Array<ArrayBuffer>>()
  return async req => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return api(req)
    const path = new URL(req.url).pathname
    const isIndex = path === '/' || path === '/index.html'
    if (!isIndex && !/^\/assets\/[A-Za-z0-9._-]+$/.test(path)) return api(req)
    const file = isIndex ? 'index.html' : normalize(path.slice(1))
    let bytes = isIndex ? undefined : cache.get(file)
    if (!bytes) {
      try {
        bytes = new Uint8Array(await readFile(join(dir, file)))
        if (!isIndex) cache.set(file, bytes)
      } catch {
        if (isIndex)
          return new Response(req.method === 'HEAD' ? null : NOT_BUILT, {
            status: 503,
            headers: { 'content-type': 'text/html; charset=utf-8' }
          })
        return api(req)
      }
    }
    const ext = file.slice(file.lastIndexOf('.'))
    return new Response(req.method === 'HEAD' ? null : bytes, {
      headers: {
        'content-type': TYPES[ext] ?? 'application/octet-stream',
        'content-length': String(bytes.length),
        'cache-control': isIndex ? 'no-cache' : 'public, max-age=31536000, immutable',
        'x-content-type-options': 'nosniff'
      }
    })
  }
}
