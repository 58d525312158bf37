/** @module The typed Latentbase client: datasets, documents, diff and webhook verification, on the server's own zod contract. */
import { z } from 'zod'
import {
  CreateDatasetRequest, CreatedDataset, DatasetView, DocumentView,
} from '@latentbase/shared/contract/dataset'
import { DiffResult } from '@latentbase/shared/contract/diff'
import { EncoderInfo } from '@latentbase/shared/contract/encoder'
import { Problem } from '@latentbase/shared/contract/problem'
import { WebhookEvent } from '@latentbase/shared/contract/webhook'
import { verifyWebhook as verifySigned } from '@latentbase/shared/webhooks/sign'
import { analysesClient } from './analyses.ts'
import { llmClient } from './llm.ts'
import { sliceQueryValue, type Slice } from '@latentbase/shared/contract/slice'
export type { Slice } from '@latentbase/shared/contract/slice'

export { WebhookEvent }
export { AnalysisJobFailedError, type AnalysesClient, type ClustersRequest, type CorrelationsParams, type SearchParams } from './analyses.ts'
export type { DatasetView, DocumentView, DiffResult, EncoderInfo, Problem }
export type CreateDatasetInput = z.input<typeof CreateDatasetRequest>
export type Dataset = z.infer<typeof DatasetView>
export type CreatedDatasetResult = z.infer<typeof CreatedDataset>
export type Document = z.infer<typeof DocumentView>
export type Diff = z.infer<typeof DiffResult>

export interface ClientOptions {
  baseUrl: string
  apiKey?: string
  fetch?: typeof globalThis.fetch
  /** Extra headers sent with every request. */
  headers?: Record<string, string>
}

export interface DiffParams {
  a: string
  b: string | string[]
  limit?: number
  minFrequency?: number
  maxFrequency?: number
  metric?: 'absolute' | 'relative'
  direction?: 'a' | 'b' | 'both'
  latents?: number[]
  pairBy?: string
  controlLength?: boolean
  /** Compare only a slice of a: an object (JSON form) or the text form, e.g. `metadata.model = "x" and latent 12 > 0.5`. */
  aWhere?: Slice | string
  /** Slices of the b datasets: one, or one per b in the same order (undefined for a whole dataset). */
  bWhere?: Slice | string | Array<Slice | string | undefined>
}

/** An error answer of the API, with its problem document. */
export class LatentbaseError extends Error {
  constructor(readonly status: number, readonly problem: Problem) {
    super(`${status} ${problem.title}: ${problem.detail ?? ''}`.trim())
    this.name = 'LatentbaseError'
  }
  get code(): string | undefined { return this.problem.code }
}

export class DatasetFailedError extends Error {
  constructor(readonly dataset: Dataset) {
    super(`dataset ${dataset.id} failed: ${dataset.error?.message ?? 'no reason given'}`)
    this.name = 'DatasetFailedError'
  }
}

export function createClient(options: ClientOptions) {
  const doFetch = options.fetch ?? globalThis.fetch
  const base = options.baseUrl.replace(/\/+$/, '')

  async function call<T>(schema: z.ZodType<T> | null, method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await doFetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    if (!res.ok) {
      const text = await res.text()
      let parsed: Problem
      try { parsed = Problem.parse(JSON.parse(text)) } catch { parsed = { type: 'about:blank', title: res.statusText || 'Error', status: res.status, detail: text.slice(0, 500) } }
      throw new LatentbaseError(res.status, parsed)
    }
    if (schema === null) return undefined as T
    return schema.parse(await res.json())
  }

  const datasets = {
    /** Queue a dataset for encoding. A generated webhook secret is returned once, here. */
    create: (input: CreateDatasetInput) => call(CreatedDataset, 'POST', '/datasets', CreateDatasetRequest.parse(input)),
    get: (id: string) => call(DatasetView, 'GET', `/datasets/${encodeURIComponent(id)}`),
    list: async () => (await call(z.object({ datasets: z.array(DatasetView) }), 'GET', '/datasets')).datasets,
    delete: (id: string) => call(null, 'DELETE', `/datasets/${encodeURIComponent(id)}`),
    /** Poll until the dataset is ready; throws DatasetFailedError if its job failed. */
    async waitUntilReady(id: string, opts: { timeoutMs?: number; intervalMs?: number; onProgress?: (d: Dataset) => void; signal?: AbortSignal } = {}): Promise<Dataset> {
      const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000)
      let interval = opts.intervalMs ?? 500
      for (;;) {
        const d = await datasets.get(id)
        opts.onProgress?.(d)
        if (d.status === 'ready') return d
        if (d.status === 'failed') throw new DatasetFailedError(d)
        if (Date.now() > deadline) throw new Error(`dataset ${id} not ready after ${opts.timeoutMs ?? 1_800_000} ms (status ${d.status})`)
        opts.signal?.throwIfAborted()
        await new Promise((r) => setTimeout(r, interval))
        interval = Math.min(interval * 1.5, 5000)
      }
    },
  }

  return {
    ...analysesClient(call),
    ...llmClient(call),
    datasets,
    documents: {
      get: (dataset: string, row: number) => call(DocumentView, 'GET', `/datasets/${encodeURIComponent(dataset)}/documents/${row}`),
    },
    diff(params: DiffParams) {
      const q = new URLSearchParams({ a: params.a })
      for (const b of Array.isArray(params.b) ? params.b : [params.b]) q.append('b', b)
      for (const key of ['limit', 'minFrequency', 'maxFrequency', 'metric', 'direction', 'pairBy'] as const) {
        if (params[key] !== undefined) q.set(key, String(params[key]))
      }
      if (params.latents?.length) q.set('latents', params.latents.join(','))
      if (params.controlLength !== undefined) q.set('controlLength', String(params.controlLength))
      if (params.aWhere !== undefined) q.set('aWhere', sliceQueryValue(params.aWhere))
      if (params.bWhere !== undefined) for (const w of Array.isArray(params.bWhere) ? params.bWhere : [params.bWhere]) q.append('bWhere', sliceQueryValue(w))
      return call(DiffResult, 'GET', `/diff?${q}`)
    },
    encoders: {
      list: async () => (await call(z.object({ encoders: z.array(EncoderInfo) }), 'GET', '/encoders')).encoders,
    },
  }
}

export type LatentbaseClient = ReturnType<typeof createClient>


/**
 * Verify a Standard Webhooks signature and parse the event. `body` must be the raw request body.
 * Throws if the signature, timestamp or payload is wrong.
 */
export async function verifyWebhook(secret: string, headers: Headers | Record<string, string>, body: string, opts?: { toleranceSeconds?: number; now?: number }): Promise<WebhookEvent> {
  await verifySigned(secret, headers, body, opts)
  return WebhookEvent.parse(JSON.parse(body))
}
