/** @module Typed client methods for the analyses (latent pages, correlations, clustering, search) and analysis jobs, on the server's contracts. */
import { z } from 'zod'
import { AnalysisJobAccepted, AnalysisJobView, AnalysisResultPage } from '@latentbase/shared/contract/analysis-job'
import { CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { ClustersResult, type ClustersInput } from '@latentbase/shared/contract/clusters'
import { LatentIntervals, LatentList, LatentPage, type LatentListQuery } from '@latentbase/shared/contract/latents'
import { SearchResult } from '@latentbase/shared/contract/search'
import { DryRunEstimate } from '@latentbase/shared/contract/llm'
import { sliceQueryValue, type Slice } from '@latentbase/shared/contract/slice'
import { pollUntil } from './poll.ts'

export type { AnalysisJobView, LatentPage, CorrelationsResult, SearchResult, ClustersResult }
export type AnalysisJob = z.infer<typeof AnalysisJobView>

/** The `call(schema, method, path, body?)` helper of createClient: sends, maps errors to LatentbaseError, parses. */
export type Call = <T>(
  schema: z.ZodType<T> | null,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>
) => Promise<T>

/** The clustering request (shared contract), plus a webhook told when it runs as a job. */
export type ClustersRequest = ClustersInput & { webhook?: { url: string; secret?: string } }

export interface CorrelationsParams {
  dataset: string
  /** Only a slice of the dataset: an object (JSON form) or the text form (docs/slices.md). */
  where?: Slice | string
  minNpmi?: number
  minFrequency?: number
  maxFrequency?: number
  minCount?: number
  maxLabelSimilarity?: number
  dropAdjacent?: boolean
  adjacentShare?: number
  /** Tokens apart two latents' peaks may be and count as adjacent (server default 3; 1: the paper's same-or-next token). */
  adjacentTokens?: number
  /** Present only where a latent reaches this share of its max in the dataset (server default 0.5; 0: value > 0). */
  minActivation?: number
  dropPositional?: boolean
  limit?: number
}

export interface SearchParams {
  dataset: string
  /** Search only a slice of the dataset: an object (JSON form) or the text form (docs/slices.md). */
  where?: Slice | string
  q?: string
  method?: 'sae' | 'bm25' | 'hybrid'
  latents?: number[]
  k?: number
  temperature?: number
  limit?: number
  /** LLM query expansion: keywords for BM25, label-style phrases for the latent match (the server needs an LLM). */
  expand?: boolean
  /** LLM rerank of the top 50 (the server needs an LLM); the result's `usage` says what the LLM steps cost. */
  rerank?: boolean
  /** LLM selection: among the 100 closest labels an LLM keeps and ranks the relevant latents (sae, hybrid). */
  select?: boolean
}

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** The interval grows 1.5x per poll up to this (default: the client's poll.maxIntervalMs, else 5000). */
  maxIntervalMs?: number
  onProgress?: (job: AnalysisJob) => void
  signal?: AbortSignal
}

export class AnalysisJobFailedError extends Error {
  constructor(readonly job: AnalysisJob) {
    super(`analysis job ${job.id} failed: ${job.error?.message ?? 'no reason given'}`)
    this.name = 'AnalysisJobFailedError'
  }
  get code(): string | undefined {
    return this.job.error?.code
  }
}

function queryString(params: object): string {
  const q = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue
    if (key === 'where') {
      q.set(key, sliceQueryValue(value as Slice | string))
      continue
    }
    q.set(key, Array.isArray(value) ? value.join(',') : String(value))
  }
  return q.toString()
}

const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`

export function analysesClient(call: Call, poll: { maxIntervalMs?: number } = {}) {
  const jobs = {
    get: (id: string) => call(AnalysisJobView, 'GET', jobPath(id)),
    /** Poll until the job is ready; throws AnalysisJobFailedError when it failed. */
    wait(id: string, opts: WaitOptions = {}): Promise<AnalysisJob> {
      const timeoutMs = opts.timeoutMs ?? 30 * 60_000
      return pollUntil(
        () => jobs.get(id),
        job => {
          if (job.status === 'failed') throw new AnalysisJobFailedError(job)
          return job.status === 'ready'
        },
        {
          timeoutMs,
          intervalMs: opts.intervalMs ?? 250,
          maxIntervalMs: opts.maxIntervalMs ?? poll.maxIntervalMs ?? 5000,
          signal: opts.signal,
          onProgress: opts.onProgress,
          notReady: job =>
            `analysis job ${id} not ready after ${timeoutMs} ms (status ${job.status}, ${Math.round(job.progress.fraction * 100)}% ${job.progress.phase})`
        }
      )
    },
    /** One page of a ready job's result: its per-row arrays (clusters: assignments) cut to [offset, offset + limit). */
    result: (id: string, page: { offset?: number; limit?: number } = {}) =>
      call(
        AnalysisResultPage,
        'GET',
        `${jobPath(id)}/result${Object.keys(page).length ? `?${queryString(page)}` : ''}`
      ),
    /** The whole result of a ready job, its pages put back together. */
    async resultAll(id: string, opts: { pageSize?: number } = {}): Promise<Record<string, unknown>> {
      let page = await jobs.result(id, { offset: 0, limit: opts.pageSize ?? 10_000 })
      const { page: info, job: _job, ...first } = page
      if (!info) return first
      const out: Record<string, unknown> = { ...first }
      const perRow = info.fields
      const arrays = Object.fromEntries(perRow.map(k => [k, [...(first[k] as unknown[])]]))
      let next = info.next
      while (next) {
        const offset = Number(new URL(next, 'http://x').searchParams.get('offset'))
        page = await jobs.result(id, { offset, limit: info.limit })
        // Appended one by one: a page (up to 100,000 rows) may be more than one call's arguments can hold.
        for (const k of perRow) for (const v of page[k] as unknown[]) arrays[k].push(v)
        next = page.page?.next ?? null
      }
      return Object.assign(out, arrays)
    }
  }

  /** A request the server may answer directly (200) or as a job (202): either way, the result. */
  async function resultOf<T>(
    schema: z.ZodType<T>,
    accepted: z.infer<typeof AnalysisJobAccepted> | T,
    wait?: WaitOptions
  ): Promise<T> {
    const parsed = AnalysisJobAccepted.safeParse(accepted)
    if (!parsed.success) return accepted as T
    await jobs.wait(parsed.data.job.id, wait)
    return schema.parse(await jobs.resultAll(parsed.data.job.id))
  }

  return {
    latents: {
      /** A latent's page in a dataset: label, frequency, p90, histogram and top examples with per-token activations. */
      get: (
        dataset: string,
        latent: number,
        opts: { examples?: number; text?: boolean; where?: Slice | string } = {}
      ) => call(LatentPage, 'GET', `/latents/${latent}?${queryString({ dataset, ...opts })}`),
      /** A dataset's latents, most frequent first, or ranked by how close their labels are to `q`; a page at a time. */
      list: (query: LatentListQuery) => call(LatentList, 'GET', `/latents?${queryString(query)}`),
      /**
       * Documents sampled from equal-width intervals of the latent's pooled value (highest first), with token windows
       * where the server holds the encoder: what the latent does below its top examples.
       */
      intervals: (
        dataset: string,
        latent: number,
        opts: { intervals?: number; perInterval?: number; seed?: number; where?: Slice | string } = {}
      ) => call(LatentIntervals, 'GET', `/latents/${latent}/intervals?${queryString({ dataset, ...opts })}`)
    },
    /** Latent pairs that co-occur, by NPMI (waits on the job when the server queues a large dataset). */
    async correlations(params: CorrelationsParams, wait?: WaitOptions): Promise<CorrelationsResult> {
      const answer = await call(
        z.union([AnalysisJobAccepted, CorrelationsResult]),
        'GET',
        `/correlations?${queryString(params)}`
      )
      return resultOf(CorrelationsResult, answer, wait)
    },
    /** Cluster a dataset; a large one runs as a job, which this waits on and reads back page by page. */
    async clusters(request: ClustersRequest, wait?: WaitOptions): Promise<ClustersResult> {
      const answer = await call(z.union([AnalysisJobAccepted, ClustersResult]), 'POST', '/clusters', request)
      return resultOf(ClustersResult, answer, wait)
    },
    /** Queue a clustering job without waiting, whatever the dataset's size (202), for webhooks or your own polling. */
    submitClusters: (request: ClustersRequest) => call(AnalysisJobAccepted, 'POST', '/clusters?async=true', request),
    jobs,
    /** Documents with a property: `sae` (latents whose labels match q), `bm25`, or `hybrid`. */
    search: (params: SearchParams) => call(SearchResult, 'GET', `/search?${queryString(params)}`),
    /** The tokens and cost the LLM steps (expand, select, rerank) of a search would spend; spends nothing. */
    estimateSearch: (params: SearchParams) =>
      call(DryRunEstimate, 'GET', `/search?${queryString({ ...params, dryRun: true })}`),
    /** The tokens and cost of a clustering's LLM calls (axis, nameClusters); clusters and spends nothing. */
    estimateClusters: (request: ClustersRequest) =>
      call(DryRunEstimate, 'POST', '/clusters', { ...request, dryRun: true })
  }
}

export type AnalysesClient = ReturnType<typeof analysesClient>
