/** @module The web interface's client of the public HTTP API: the API key from localStorage, problem+json errors, 401s explained. */

const KEY_STORAGE = 'latentbase.apiKey'

export function getApiKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? ''
  } catch {
    return ''
  }
}
export function setApiKey(key: string): void {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key)
    else localStorage.removeItem(KEY_STORAGE)
  } catch {
    /* private mode: the key lives for this page only */
  }
  window.dispatchEvent(new Event('latentbase:key'))
}

export interface Problem {
  title: string
  status: number
  detail?: string
  code?: string
  errors?: Array<{ path: string; message: string }>
}

/** An error answer of the API, with its problem document and a sentence on what to do. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem
  ) {
    super(problem.detail ?? problem.title)
    this.name = 'ApiError'
  }
  get code(): string | undefined {
    return this.problem.code
  }
  /** What the user can do about it, in words. */
  get advice(): string | null {
    if (this.status === 401) {
      return getApiKey()
        ? 'The API key in the key field was refused (unknown or revoked). Paste a valid key (lb_...) into the field at the top and press Save.'
        : 'This server requires an API key. Paste your key (lb_..., made with `npm run keys -- create --tenant NAME`) into the key field at the top and press Save; it is kept in this browser only.'
    }
    if (this.status === 429) return 'Too many requests for this API key: wait a moment and try again.'
    if (this.status === 503 && this.code === 'llm-not-configured')
      return 'This needs an LLM: start the server with LLM_BASE_URL and LLM_MODEL set.'
    return null
  }
}

/** The base URL of the API: the page's own origin (the interface is served by the API it talks to). */
const base = (): string => (window as { LATENTBASE_API?: string }).LATENTBASE_API ?? ''

function headers(extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json', ...extra }
  const key = getApiKey()
  if (key) h.authorization = `Bearer ${key}`
  return h
}

async function answer<T>(res: Response): Promise<T> {
  if (res.status === 204) return undefined as T
  const text = await res.text()
  let body: unknown = null
  try {
    body = text ? JSON.parse(text) : null
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const p = (
      body && typeof body === 'object' ? body : { title: res.statusText || 'Error', detail: text.slice(0, 300) }
    ) as Problem
    if (res.status === 401) window.dispatchEvent(new Event('latentbase:unauthorized'))
    throw new ApiError(res.status, { ...p, status: res.status })
  }
  return body as T
}

/** A JSON request; `status` receives the HTTP status (202 means the request became an analysis job). */
export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal } = {},
  status?: (s: number) => void
): Promise<T> {
  const res = await fetch(base() + path, {
    method: init.method ?? 'GET',
    signal: init.signal,
    headers: headers(init.body === undefined ? undefined : { 'content-type': 'application/json' }),
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  status?.(res.status)
  return answer<T>(res)
}

/** POST /uploads: the file itself as the body. */
export async function uploadFile(file: File): Promise<{ id: string; url: string; bytes: number; filename: string }> {
  const res = await fetch(`${base()}/uploads?${new URLSearchParams({ filename: file.name })}`, {
    method: 'POST',
    headers: headers({ 'content-type': file.type || 'application/octet-stream' }),
    body: file
  })
  return answer(res)
}

export function query(params: Record<string, string | number | boolean | undefined | null | string[]>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue
    if (Array.isArray(v)) for (const x of v) q.append(k, x)
    else q.set(k, String(v))
  }
  return q.toString()
}

export interface JobView {
  id: string
  status: 'queued' | 'running' | 'ready' | 'failed'
  progress: { fraction: number; phase: string }
  error?: { code: string; message: string }
  resultHref?: string
  analysis: string
}

/**
 * Runs an analysis that may answer directly (200) or as a job (202): polls GET /jobs/{id} (reporting progress),
 * then reads GET /jobs/{id}/result.
 */
export async function runAnalysis<T>(
  path: string,
  init: { method?: string; body?: unknown },
  onJob: (job: JobView) => void,
  signal?: AbortSignal
): Promise<T> {
  let status = 0
  const first = await api<T | { job: { id: string } }>(path, { ...init, signal }, s => {
    status = s
  })
  if (status !== 202) return first as T
  const id = (first as { job: { id: string } }).job.id
  for (let wait = 250; ; wait = Math.min(wait * 1.5, 2000)) {
    const job = await api<JobView>(`/jobs/${encodeURIComponent(id)}`, { signal })
    onJob(job)
    if (job.status === 'ready') return api<T>(`/jobs/${encodeURIComponent(id)}/result`, { signal })
    if (job.status === 'failed')
      throw new ApiError(500, {
        title: 'Analysis failed',
        status: 500,
        detail: job.error?.message ?? 'the job failed',
        code: job.error?.code
      })
    await new Promise(r => setTimeout(r, wait))
    signal?.throwIfAborted()
  }
}
