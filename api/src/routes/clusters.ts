/** @module POST /clusters: targeted clustering, answered directly for small datasets and as an analysis job (202) otherwise. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { AnalysisJobAccepted, ClustersJobRequest } from '@latentbase/shared/contract/analysis-job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { Problem } from '@latentbase/shared/contract/problem'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { generateWebhookSecret } from '@latentbase/shared/webhooks/sign'
import type { AppDeps, AppEnv } from '../app.ts'
import { checkWebhookUrl } from '../urls.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { defaultRunners, jobHref, submitAnalysisJob, type AnalysisRunners } from '../services/analysis-jobs.ts'
import { llmOf, requireLlmOf } from '../services/llm-helpers.ts'
import { estimateClusters } from '../services/clusters-service.ts'

/**
 * Up to this many documents a clustering is answered in the request: exact Jaccard + spectral on 2,000 rows takes
 * well under the seconds an HTTP client waits, and fits an edge function's memory.
 */
export const DIRECT_MAX_DOCUMENTS = 2000

export type AnalysisRouteDeps = AppDeps & {
  analysisQueue: JobQueue<AnalysisQueueMessage>
  embedder: Embedder
  /** The analyses (tests inject their own); the real services by default. */
  runners?: AnalysisRunners
  /** Datasets with at most this many documents are answered directly (default DIRECT_MAX_DOCUMENTS). */
  directMaxDocuments?: number
}

const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: Problem } }, description })

export function registerClustersRoutes(app: OpenAPIHono<AppEnv>, deps: AnalysisRouteDeps): void {
  app.openapi(createRoute({
    method: 'post', path: '/clusters',
    summary: 'Cluster the documents of a dataset on all latents, given latents, or the latents closest to phrases',
    description: 'Small datasets are answered directly (200). Larger ones, requests with a webhook, and requests sent with `Prefer: respond-async` or `?async=true` become an analysis job (202): poll `GET /jobs/{id}`, then read `GET /jobs/{id}/result` page by page.',
    request: {
      query: z.object({ async: z.enum(['true', 'false']).optional().describe('true: always answer with a job (202)') }),
      body: { required: true, content: { 'application/json': { schema: ClustersJobRequest } } } },
    responses: {
      200: { content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } }, description: 'the clustering (small datasets)' },
      202: { content: { 'application/json': { schema: AnalysisJobAccepted } }, description: 'queued as an analysis job' },
      400: problemResponse('invalid request'), 404: problemResponse('unknown dataset'), 409: problemResponse('dataset not ready'),
      422: problemResponse('refused webhook URL'),
      503: problemResponse('axis or nameClusters without an LLM configured (llm-not-configured)'),
    },
  }), async (c) => {
    const { webhook, ...request } = c.req.valid('json')
    const forceJob = c.req.valid('query').async === 'true' || /respond-async/i.test(c.req.header('prefer') ?? '')
    const tenant = c.get('tenant')
    // Checked before anything is queued: a job without an LLM would only fail later.
    if (request.axis || request.nameClusters) requireLlmOf(deps, request.axis ? 'axis' : 'nameClusters')
    if (request.dryRun && (request.axis || request.nameClusters)) {
      return c.json(await estimateClusters({
        objects: deps.objects, datasets: deps.datasets, encoders: deps.encoders, embedder: deps.embedder, tenant, llm: llmOf(deps).llm,
      }, request) as unknown as Record<string, unknown>, 200)
    }
    const ds = await loadReadyDataset(deps.datasets, tenant, request.dataset, 'dataset')
    if (webhook) checkWebhookUrl(webhook.url, deps.mode)
    const direct = ds.manifest.documents.count <= (deps.directMaxDocuments ?? DIRECT_MAX_DOCUMENTS)
    if (direct && !webhook && !forceJob) {
      const result = await (deps.runners ?? defaultRunners).clusters({
        objects: deps.objects, datasets: deps.datasets, encoders: deps.encoders, embedder: deps.embedder, tenant,
        signal: c.req.raw.signal, llm: llmOf(deps).llm,
      }, request)
      return c.json(result as Record<string, unknown>, 200)
    }
    const generatedSecret = webhook && !webhook.secret ? generateWebhookSecret() : undefined
    const record = await submitAnalysisJob({ objects: deps.objects, queue: deps.analysisQueue, now: deps.now }, tenant, {
      analysis: 'clusters', dataset: request.dataset, request,
      ...(webhook ? { webhook: { url: webhook.url, secret: webhook.secret ?? generatedSecret! } } : {}),
    })
    c.header('Location', jobHref(record.id))
    return c.json({ job: { id: record.id, status: record.status, href: jobHref(record.id) }, ...(generatedSecret ? { webhookSecret: generatedSecret } : {}) }, 202)
  })
}
