/** @module POST /clusters: targeted clustering, answered directly for small datasets and as an analysis job (202) otherwise. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { AnalysisJobAccepted, ClustersJobRequest } from '@latentbase/shared/contract/analysis-job'
import { analysisContext, type AppEnv, type QueuedDeps } from '../deps.ts'
import { checkWebhookUrl } from '../urls.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { defaultRunners } from '../services/analysis-jobs.ts'
import { requireLlmOf } from '../services/llm-helpers.ts'
import { estimateClusters } from '../services/clusters-service.ts'
import { problemResponse } from '../problem.ts'
import { answerWithJob, wantsJob } from './job-answer.ts'

/**
 * Up to this many documents a clustering is answered in the request: the slowest choice on 2,000 rows (exact Jaccard
 * + spectral, 2 n^2 bytes; the cosine default is ~10x faster) takes well under the seconds an HTTP client waits, and fits
 * an edge function's memory.
 */
export const DIRECT_MAX_DOCUMENTS = 2000

export function registerClustersRoutes(app: OpenAPIHono<AppEnv>, deps: QueuedDeps): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/clusters',
      summary: 'Cluster the documents of a dataset on all latents, given latents, or the latents closest to phrases',
      description:
        'Small datasets are answered directly (200). Larger ones, requests with a webhook, and requests sent with `Prefer: respond-async` or `?async=true` become an analysis job (202): poll `GET /jobs/{id}`, then read `GET /jobs/{id}/result` page by page.',
      request: {
        query: z.object({
          async: z.enum(['true', 'false']).optional().describe('true: always answer with a job (202)')
        }),
        body: { required: true, content: { 'application/json': { schema: ClustersJobRequest } } }
      },
      responses: {
        200: {
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
          description: 'the clustering (small datasets)'
        },
        202: {
          content: { 'application/json': { schema: AnalysisJobAccepted } },
          description: 'queued as an analysis job'
        },
        400: problemResponse('invalid request'),
        404: problemResponse('unknown dataset'),
        409: problemResponse('dataset not ready'),
        422: problemResponse('refused webhook URL'),
        503: problemResponse('axis or nameClusters without an LLM configured (llm-not-configured)')
      }
    }),
    async c => {
      const { webhook, ...request } = c.req.valid('json')
      const tenant = c.get('tenant')
      // Checked before anything is queued: a job without an LLM would only fail later.
      if (request.axis || request.nameClusters) requireLlmOf(deps, request.axis ? 'axis' : 'nameClusters')
      if (request.dryRun && (request.axis || request.nameClusters)) {
        return c.json(
          (await estimateClusters(analysisContext(deps, tenant), request)) as unknown as Record<string, unknown>,
          200
        )
      }
      const ds = await loadReadyDataset(deps.datasets, tenant, request.dataset, 'dataset')
      if (webhook) checkWebhookUrl(webhook.url, deps.mode)
      const direct = ds.manifest.documents.count <= (deps.directMaxDocuments ?? DIRECT_MAX_DOCUMENTS)
      if (direct && !wantsJob(c, webhook)) {
        const result = await (deps.runners ?? defaultRunners).clusters(
          analysisContext(deps, tenant, c.req.raw.signal),
          request
        )
        return c.json(result as Record<string, unknown>, 200)
      }
      return answerWithJob(c, deps, { analysis: 'clusters', dataset: request.dataset, request, webhook })
    }
  )
}
