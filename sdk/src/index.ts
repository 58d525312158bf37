/** @module The typed Latentbase client: datasets, documents, diff and webhook verification, on the server's own zod contract. */
import { z } from 'zod'
import {
  CreateDatasetRequest,
  CreatedDataset,
  DatasetView,
  DocumentActivations,
  DocumentView,
  FacetsView,
  TextActivations
} from '@latentbase/shared/contract/dataset'
import { DiffResult } from '@latentbase/shared/contract/diff'
import { type EncoderInfo, EncoderList } from '@latentbase/shared/contract/encoder'
import { Problem } from '@latentbase/shared/contract/problem'
import { UploadResult } from '@latentbase/shared/contract/upload'
import { SimilarDocuments, SimilarToText } from '@latentbase/shared/contract/similar'
import { WebhookEvent } from '@latentbase/shared/contract/webhook'
import { verifyWebhook as verifySigned } from '@latentbase/shared/webhooks/sign'
import { retryingFetch, type RetryOptions } from '@latentbase/shared/net/retry'
import { analysesClient } from './analyses.ts'
import { llmClient } from './llm.ts'
import { pollUntil } from './poll.ts'
import { versionMethods } from './versions.ts'
import { sliceQueryValue, type Slice } from '@latentbase/shared/contract/slice'
export type { Slice } from '@latentbase/shared/contract/slice'

export { WebhookEvent }
export {
  AppendFailedError,
  parseDatasetRef,
  formatDatasetRef,
  versionOf,
  type AppendDocumentsInput,
  type UpdateDatasetInput,
  type DatasetRef,
  type Watch,
  type VersionInfo,
  type DriftReport
} from './versions.ts'
export { isConnectionReset, type RetryOptions } from '@latentbase/shared/net/retry'
export {
  AnalysisJobFailedError,
  type AnalysesClient,
  type ClustersRequest,
  type CorrelationsParams,
  type SearchParams
} from './analyses.ts'
export type {
  DatasetView,
  DocumentActivations,
  DocumentView,
  DiffResult,
  EncoderInfo,
  FacetsView,
  Problem,
  TextActivations
}
export type CreateDatasetInput = z.input<typeof CreateDatasetRequest>
export type Dataset = z.infer<typeof DatasetView>
export type CreatedDatasetResult = z.infer<typeof CreatedDataset>
export type Document = z.infer<typeof DocumentView>
export type Diff = z.infer<typeof DiffResult>
export type Upload = z.infer<typeof UploadResult>
/** What POST /uploads takes as the file: its bytes (a Blob or File keeps its own type when contentType is left out). */
export type UploadBody = Blob | ArrayBuffer | Uint8Array | string

export interface ClientOptions {
  baseUrl: string
  apiKey?: string
  fetch?: typeof globalThis.fetch
  /** Extra headers sent with every request. */
  headers?: Record<string, string>
  /**
   * Retries of idempotent requests (GET, HEAD, DELETE; POST with an Idempotency-Key, which `datasets.create`
   * always sends) whose connection was reset, with exponential backoff (default 4 retries from 100 ms); false: none.
   */
  retry?: RetryOptions | false
  /** Polling of waitUntilReady / jobs.wait: the interval grows 1.5x per poll up to maxIntervalMs (default 5000). */
  poll?: { maxIntervalMs?: number }
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
  /** Which latents get a `peak` (the token they fire on in their top examples): 'unlabelled' (default), 'all' or 'none'. */
  peaks?: 'unlabelled' | 'all' | 'none'
  /** Compare only a slice of a: an object (JSON form) or the text form, e.g. `metadata.model = "x" and latent 12 > 0.5`. */
  aWhere?: Slice | string
  /** Slices of the b datasets: one, or one per b in the same order (undefined for a whole dataset). */
  bWhere?: Slice | string | Array<Slice | string | undefined>
}

/** An error answer of the API, with its problem document. */
export class LatentbaseError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem
  ) {
    super(`${status} ${problem.title}: ${problem.detail ?? ''}`.trim())
    this.name = 'LatentbaseError'
  }
  get code(): string | undefined {
    return this.problem.code
  }
}

export class DatasetFailedError extends Error {
  constructor(readonly dataset: Dataset) {
    super(`dataset ${dataset.id} failed: ${dataset.error?.message ?? 'no reason given'}`)
    this.name = 'DatasetFailedError'
  }
}

export function createClient(options: ClientOptions) {
  // The one place requests are sent: every method below, and the polling loops, retry through it.
  const plainFetch = options.fetch ?? globalThis.fetch
  const doFetch = options.retry === false ? plainFetch : retryingFetch(plainFetch, options.retry)
  const base = options.baseUrl.replace(/\/+$/, '')

  /** One request: `body` is sent as JSON, or `rawBody` as it is (its content type in `extraHeaders`). */
  async function call<T>(
    schema: z.ZodType<T> | null,
    method: string,
    path: string,
    body?: unknown,
    extraHeaders?: Record<string, string>,
    rawBody?: BodyInit
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers, ...extraHeaders }
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await doFetch(`${base}${path}`, {
      method,
      headers,
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body))
    })
    if (!res.ok) {
      const text = await res.text()
      let parsed: Problem
      try {
        parsed = Problem.parse(JSON.parse(text))
      } catch {
        parsed = {
          type: 'about:blank',
          title: res.statusText || 'Error',
          status: res.status,
          detail: text.slice(0, 500)
        }
      }
      throw new LatentbaseError(res.status, parsed)
    }
    if (schema === null) return undefined as T
    return schema.parse(await res.json())
  }

  const datasets = {
    /**
     * Queue a dataset for encoding. A generated webhook secret is returned once, here. Sent with an Idempotency-Key
     * (a new UUID unless given), so a retry after a reset connection creates one dataset, not two.
     */
    create: (input: CreateDatasetInput, opts: { idempotencyKey?: string } = {}) =>
      call(CreatedDataset, 'POST', '/datasets', CreateDatasetRequest.parse(input), {
        'idempotency-key': opts.idempotencyKey ?? crypto.randomUUID()
      }),
    get: (id: string) => call(DatasetView, 'GET', `/datasets/${encodeURIComponent(id)}`),
    list: async () => (await call(z.object({ datasets: z.array(DatasetView) }), 'GET', '/datasets')).datasets,
    /**
     * The dataset's few-valued metadata keys, each value's documents and the slice (`where`) selecting it: a diff of
     * such a slice is added up from stored counts. `id` may name a version (`ds_1@2`).
     */
    facets: (id: string) => call(FacetsView, 'GET', `/datasets/${encodeURIComponent(id)}/facets`),
    delete: (id: string) => call(null, 'DELETE', `/datasets/${encodeURIComponent(id)}`),
    /** append, update (watch), waitForVersion: see versions.ts. */
    ...versionMethods(call, options.poll),
    /** Poll until the dataset is ready; throws DatasetFailedError if its job failed. */
    waitUntilReady(
      id: string,
      opts: {
        timeoutMs?: number
        intervalMs?: number
        maxIntervalMs?: number
        onProgress?: (d: Dataset) => void
        signal?: AbortSignal
      } = {}
    ): Promise<Dataset> {
      const timeoutMs = opts.timeoutMs ?? 30 * 60_000
      return pollUntil(
        () => datasets.get(id),
        d => {
          if (d.status === 'failed') throw new DatasetFailedError(d)
          return d.status === 'ready'
        },
        {
          timeoutMs,
          intervalMs: opts.intervalMs ?? 500,
          maxIntervalMs: opts.maxIntervalMs ?? options.poll?.maxIntervalMs ?? 5000,
          signal: opts.signal,
          onProgress: opts.onProgress,
          notReady: d => `dataset ${id} not ready after ${timeoutMs} ms (status ${d.status})`
        }
      )
    }
  }

  const uploads = {
    /**
     * Upload a source file (POST /uploads, the raw bytes as the body); create a dataset from it with
     * `datasets.create({ source: { url: upload.url } })`. Over the server's limit (100 MB by default): 413.
     */
    async create(body: UploadBody, opts: { filename?: string; contentType?: string } = {}): Promise<Upload> {
      const contentType =
        opts.contentType ?? (body instanceof Blob && body.type ? body.type : 'application/octet-stream')
      const q = opts.filename ? `?${new URLSearchParams({ filename: opts.filename })}` : ''
      return call(UploadResult, 'POST', `/uploads${q}`, undefined, { 'content-type': contentType }, body as BodyInit)
    }
  }

  return {
    ...analysesClient(call, options.poll),
    uploads,
    ...llmClient(call),
    datasets,
    documents: {
      /** One document with its pooled latents, strongest first; `peaks` as in a diff (default: unlabelled latents). */
      get: (dataset: string, row: number, opts: { peaks?: 'unlabelled' | 'all' | 'none' } = {}) =>
        call(
          DocumentView,
          'GET',
          `/datasets/${encodeURIComponent(dataset)}/documents/${row}${opts.peaks ? `?peaks=${opts.peaks}` : ''}`
        ),
      /**
       * Where chosen latents (at most 32) fire in one document, token by token: the document re-encoded as its dataset
       * was (needs a server that holds the encoder, the local one; others answer 501 encoder-not-held).
       */
      activations: (dataset: string, row: number, latents: readonly number[]) =>
        call(
          DocumentActivations,
          'GET',
          `/datasets/${encodeURIComponent(dataset)}/documents/${row}/activations?latents=${latents.join(',')}`
        ),
      /**
       * A text encoded as the dataset's documents were: its `top` strongest latents (default 20, at most 32; `order:
       * 'distinctive'` weighs each by its idf in the dataset), or the `latents` asked, each with where it fires token by token and its frequency in the dataset (needs a server that
       * holds the encoder, the local one; others answer 501 encoder-not-held).
       */
      activationsOfText: (
        dataset: string,
        text: string,
        opts: {
          top?: number
          order?: 'strongest' | 'distinctive'
          latents?: readonly number[]
          /** chat: `text` is a JSON list of { role, content } messages. */
          format?: 'text' | 'chat'
        } = {}
      ) => {
        const q = new URLSearchParams({ text })
        if (opts.format !== undefined) q.set('format', opts.format)
        if (opts.top !== undefined) q.set('top', String(opts.top))
        if (opts.order !== undefined) q.set('order', opts.order)
        if (opts.latents?.length) q.set('latents', opts.latents.join(','))
        return call(TextActivations, 'GET', `/datasets/${encodeURIComponent(dataset)}/activations?${q}`)
      },
      /**
       * Documents like this one (cosine of sqrt-idf-weighted latent sets, the similarity clustering uses), each with the
       * latents it shares with it; `in` looks in another dataset encoded alike, `where` keeps the candidates to a slice.
       */
      similar: (
        dataset: string,
        row: number,
        opts: { limit?: number; shared?: number; in?: string; where?: Slice | string } = {}
      ) => {
        const q = new URLSearchParams()
        if (opts.in !== undefined) q.set('in', opts.in)
        if (opts.limit !== undefined) q.set('limit', String(opts.limit))
        if (opts.shared !== undefined) q.set('shared', String(opts.shared))
        if (opts.where !== undefined) q.set('where', sliceQueryValue(opts.where))
        const qs = q.toString()
        return call(
          SimilarDocuments,
          'GET',
          `/datasets/${encodeURIComponent(dataset)}/documents/${row}/similar${qs ? `?${qs}` : ''}`
        )
      },
      /**
       * Documents like a text: the text encoded with the dataset's encoder as its documents were, then ranked as
       * `similar` ranks (needs a server that holds the encoder, the local one; others answer 501 encoder-not-held).
       */
      like: (dataset: string, text: string, opts: { limit?: number; shared?: number; where?: Slice | string } = {}) => {
        const q = new URLSearchParams({ text })
        if (opts.limit !== undefined) q.set('limit', String(opts.limit))
        if (opts.shared !== undefined) q.set('shared', String(opts.shared))
        if (opts.where !== undefined) q.set('where', sliceQueryValue(opts.where))
        return call(SimilarToText, 'GET', `/datasets/${encodeURIComponent(dataset)}/similar?${q}`)
      }
    },
    diff(params: DiffParams) {
      const q = new URLSearchParams({ a: params.a })
      for (const b of Array.isArray(params.b) ? params.b : [params.b]) q.append('b', b)
      for (const key of ['limit', 'minFrequency', 'maxFrequency', 'metric', 'direction', 'pairBy', 'peaks'] as const) {
        if (params[key] !== undefined) q.set(key, String(params[key]))
      }
      if (params.latents?.length) q.set('latents', params.latents.join(','))
      if (params.controlLength !== undefined) q.set('controlLength', String(params.controlLength))
      if (params.aWhere !== undefined) q.set('aWhere', sliceQueryValue(params.aWhere))
      if (params.bWhere !== undefined)
        for (const w of Array.isArray(params.bWhere) ? params.bWhere : [params.bWhere])
          q.append('bWhere', sliceQueryValue(w))
      return call(DiffResult, 'GET', `/diff?${q}`)
    },
    encoders: {
      list: async () => (await call(EncoderList, 'GET', '/encoders')).encoders,
      /** Encoder folders the server found but could not load, each with its reason. */
      unavailable: async () => (await call(EncoderList, 'GET', '/encoders')).unavailable
    }
  }
}

export type LatentbaseClient = ReturnType<typeof createClient>

/**
 * Verify a Standard Webhooks signature and parse the event. `body` must be the raw request body.
 * Throws if the signature, timestamp or payload is wrong.
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string>,
  body: string,
  opts?: { toleranceSeconds?: number; now?: number }
): Promise<WebhookEvent> {
  await verifySigned(secret, headers, body, opts)
  return WebhookEvent.parse(JSON.parse(body))
}
