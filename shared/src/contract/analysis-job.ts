/** @module Analysis jobs: heavy analyses (clustering, large correlations) queued on their own queue, with a job resource, progress and a result. */
import { assertSafeId } from './id.ts'
import { z } from 'zod'
import { WebhookJob } from './job.ts'
import { WebhookSpec } from './dataset.ts'
import { ClustersRequest, oneLatentChoice } from './clusters.ts'

export const AnalysisKind = z.enum(['clusters', 'correlations', 'hypotheses', 'hypotheses-verify', 'relabel'])
export type AnalysisKind = z.infer<typeof AnalysisKind>

export const AnalysisJobStatus = z.enum(['queued', 'running', 'ready', 'failed'])
export type AnalysisJobStatus = z.infer<typeof AnalysisJobStatus>

/** The message on the analysis queue: tiny, the record in the store holds the request. */
export const AnalysisJobMessage = z.object({
  kind: z.literal('analysis'),
  tenant: z.string().min(1),
  jobId: z.string().min(1)
})
export type AnalysisJobMessage = z.infer<typeof AnalysisJobMessage>

/**
 * One part of a job that fans out (correlations past one worker's memory: one block of rows of the pair triangle;
 * clusters past sampleMaxDocs: one range of documents assigned to the clusters fitted on a sample).
 * The plan in the job's folder says what the part covers; the part writes its partial there once.
 */
export const AnalysisPartMessage = z.object({
  kind: z.literal('analysis-part'),
  tenant: z.string().min(1),
  jobId: z.string().min(1),
  part: z.number().int().nonnegative(),
  parts: z.number().int().positive()
})
export type AnalysisPartMessage = z.infer<typeof AnalysisPartMessage>

/** Sent when every part's partial is stored: merge them into the job's result (idempotent). */
export const AnalysisMergeMessage = z.object({
  kind: z.literal('analysis-merge'),
  tenant: z.string().min(1),
  jobId: z.string().min(1)
})
export type AnalysisMergeMessage = z.infer<typeof AnalysisMergeMessage>

/** The analysis queue also carries the webhook deliveries of its own events (WebhookJob with `jobId`). */
export const AnalysisQueueMessage = z.discriminatedUnion('kind', [
  AnalysisJobMessage,
  AnalysisPartMessage,
  AnalysisMergeMessage,
  WebhookJob
])
export type AnalysisQueueMessage = z.infer<typeof AnalysisQueueMessage>

export const AnalysisProgress = z.object({
  fraction: z.number().min(0).max(1),
  phase: z.string()
})

/**
 * Where the per-row arrays of a result (e.g. clusters' `assignments`) are kept: in chunks of `chunkRows` rows beside
 * result.json, so a page of a large result reads only the chunks it overlaps.
 */
export const ResultRows = z.object({
  fields: z.array(z.string()),
  count: z.number().int().nonnegative(),
  chunkRows: z.number().int().positive()
})
export type ResultRows = z.infer<typeof ResultRows>

/** The stored job record (`{tenant}/analyses/{jobId}.json`). */
export const AnalysisJobRecord = z.object({
  id: z.string(),
  tenant: z.string(),
  analysis: AnalysisKind,
  dataset: z.string(),
  status: AnalysisJobStatus,
  progress: AnalysisProgress,
  /** The request as the analysis service takes it (validated by that service). */
  request: z.record(z.string(), z.unknown()),
  /** Key of result.json once ready. */
  resultKey: z.string().optional(),
  rows: ResultRows.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  lastAttemptError: z.string().optional().describe('why the previous attempt stopped; the job is being retried'),
  createdAt: z.string(),
  updatedAt: z.string(),
  attempts: z.number().int().default(0),
  webhook: z
    .object({ url: z.string(), secret: z.string() })
    .optional()
    .describe('stored only; never returned by the API')
})
export type AnalysisJobRecord = z.infer<typeof AnalysisJobRecord>

/** What GET /jobs/:id returns: the record without tenant and webhook secret, with links. */
export const AnalysisJobView = AnalysisJobRecord.omit({
  tenant: true,
  webhook: true,
  resultKey: true,
  rows: true
}).extend({
  href: z.string(),
  resultHref: z.string().optional().describe('present once the job is ready'),
  webhook: z.object({ url: z.string() }).optional()
})
export type AnalysisJobView = z.infer<typeof AnalysisJobView>

/** 202 answer of a request that became a job. */
export const AnalysisJobAccepted = z.object({
  job: z.object({ id: z.string(), status: AnalysisJobStatus, href: z.string() }),
  webhookSecret: z.string().optional().describe('returned once, when the server generated the secret')
})
export type AnalysisJobAccepted = z.infer<typeof AnalysisJobAccepted>

/** POST /clusters body: the clustering request, plus a webhook told when it runs as a job. */
export const ClustersJobRequest = z
  .object({
    ...ClustersRequest.shape,
    webhook: WebhookSpec.optional().describe('told analysis.ready / analysis.failed when the request runs as a job')
  })
  .refine(oneLatentChoice, { message: 'give at most one of latents, phrases and axis', path: ['phrases'] })
export type ClustersJobRequest = z.infer<typeof ClustersJobRequest>

export const ResultPageQuery = z.object({
  offset: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000)
})

/** GET /jobs/:id/result: the result, with its per-row arrays cut to one page. */
export const AnalysisResultPage = z
  .object({
    job: z.object({ id: z.string(), analysis: AnalysisKind, dataset: z.string() }),
    page: z
      .object({
        offset: z.number().int(),
        limit: z.number().int(),
        total: z.number().int(),
        fields: z.array(z.string()).describe('the per-row arrays cut to this page'),
        next: z.string().nullable().describe('the next page, null on the last')
      })
      .optional()
      .describe('present when the result has per-row arrays (clusters: assignments)')
  })
  .catchall(z.unknown())
export type AnalysisResultPage = z.infer<typeof AnalysisResultPage>

function safe(kind: string, id: string): string {
  assertSafeId(kind, id)
  return id
}

/** Store keys of analysis jobs (beside the datasets, so deleting a dataset leaves its jobs' records readable). */
export const analysisLayout = {
  record: (tenant: string, jobId: string) => `${safe('tenant', tenant)}/analyses/${safe('job id', jobId)}.json`,
  prefix: (tenant: string, jobId: string) => `${safe('tenant', tenant)}/analyses/${safe('job id', jobId)}/`,
  result: (tenant: string, jobId: string) => `${analysisLayout.prefix(tenant, jobId)}result.json`,
  rowsChunk: (tenant: string, jobId: string, chunk: number) =>
    `${analysisLayout.prefix(tenant, jobId)}rows/part-${String(chunk).padStart(5, '0')}.json`,
  /** A fanned-out job's parts: the plan, each part's partial, and the marker of the one merge message. */
  parts: (tenant: string, jobId: string) => `${analysisLayout.prefix(tenant, jobId)}parts/`,
  plan: (tenant: string, jobId: string) => `${analysisLayout.parts(tenant, jobId)}plan.json`,
  /** The plan's binary data where it has any (clusters: the fitted sample). */
  planData: (tenant: string, jobId: string) => `${analysisLayout.parts(tenant, jobId)}plan.bin`,
  partial: (tenant: string, jobId: string, part: number) =>
    `${analysisLayout.parts(tenant, jobId)}partial-${String(part).padStart(5, '0')}.bin`,
  fannedOut: (tenant: string, jobId: string) => `${analysisLayout.parts(tenant, jobId)}fanned-out`,
  mergeQueued: (tenant: string, jobId: string) => `${analysisLayout.parts(tenant, jobId)}merge-queued`
}
