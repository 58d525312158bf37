/** @module Which dataset and webhook URLs a deployment accepts. */
import { ApiError } from './problem.ts'

/** Local mode reads http(s), file:// and absolute paths; cloud mode only http(s) (SSRF checks live in the fetcher). */
export function checkSourceUrl(url: string, mode: 'local' | 'cloud'): void {
  if (/^https?:\/\//i.test(url)) { parseOrThrow(url, 'source.url'); return }
  if (mode === 'local' && (/^file:\/\//i.test(url) || url.startsWith('/'))) return
  throw new ApiError(422, 'unsupported-url', mode === 'local'
    ? `source.url must be an http(s):// URL, a file:// URL or an absolute path; got "${url}"`
    : `source.url must be an http(s):// URL; got "${url}"`)
}

export function checkWebhookUrl(url: string, _mode: 'local' | 'cloud'): void {
  if (!/^https?:\/\//i.test(url)) throw new ApiError(422, 'unsupported-url', `webhook.url must be an http(s):// URL; got "${url}"`)
  parseOrThrow(url, 'webhook.url')
}

function parseOrThrow(url: string, field: string): URL {
  try { return new URL(url) } catch { throw new ApiError(422, 'unsupported-url', `${field} is not a valid URL: "${url}"`) }
}
