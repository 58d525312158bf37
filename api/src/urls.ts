/** @module Which dataset and webhook URLs a deployment accepts. */
import { UPLOAD_URL } from '@latentbase/shared/contract/upload'
import { sourceSpecProblem } from '@latentbase/shared/contract/dataset'
import { ApiError } from './problem.ts'

/** A source spec's other settings that must agree (checked before queueing, so the answer is a 422, not a failed job). */
export function checkSourceSpec(spec: { maxDocuments?: number; sampleSeed?: number }): void {
  const problem = sourceSpecProblem(spec)
  if (problem) throw new ApiError(422, 'invalid-source', problem)
}

/** Local mode reads http(s), file:// and absolute paths; cloud mode only http(s) (SSRF checks live in the fetcher). */
export function checkSourceUrl(url: string, mode: 'local' | 'cloud'): void {
  if (/^https?:\/\//i.test(url)) {
    parseOrThrow(url, 'source.url')
    return
  }
  // hf://datasets/owner/name[@revision][/path]: a Hugging Face Hub dataset (the worker resolves it on the Hub's host).
  if (/^hf:\/\/datasets\/[A-Za-z0-9][\w.-]*\/[\w.-]+(@[^/]+)?(\/.*)?$/.test(url)) return
  if (/^hf:/i.test(url))
    throw new ApiError(
      422,
      'unsupported-url',
      `source.url "${url}" is not a Hub dataset URL: hf://datasets/owner/name (the whole dataset), hf://datasets/owner/name/path/to/file, or with @revision after the name`
    )
  // upload://up_...: a file posted to POST /uploads (whether it exists for this tenant is checked by the dataset route).
  if (UPLOAD_URL.test(url)) return
  if (/^upload:/i.test(url))
    throw new ApiError(
      422,
      'unsupported-url',
      `source.url "${url}" is not an upload URL as POST /uploads answers it (upload://up_ and 20 letters and digits)`
    )
  if (mode === 'local' && (/^file:\/\//i.test(url) || url.startsWith('/'))) return
  throw new ApiError(
    422,
    'unsupported-url',
    mode === 'local'
      ? `source.url must be an http(s):// URL, an hf://datasets/ URL, an upload:// URL, a file:// URL or an absolute path; got "${url}"`
      : `source.url must be an http(s):// URL, an hf://datasets/ URL or an upload:// URL; got "${url}"`
  )
}

export function checkWebhookUrl(url: string, _mode: 'local' | 'cloud'): void {
  if (!/^https?:\/\//i.test(url))
    throw new ApiError(422, 'unsupported-url', `webhook.url must be an http(s):// URL; got "${url}"`)
  parseOrThrow(url, 'webhook.url')
}

function parseOrThrow(url: string, field: string): URL {
  try {
    return new URL(url)
  } catch {
    throw new ApiError(422, 'unsupported-url', `${field} is not a valid URL: "${url}"`)
  }
}
