/** @module GET /correlations: latent pairs that co-occur in a dataset's documents, by NPMI; large datasets become an analysis job. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { CorrelationsQuery, CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { AnalysisJobAccepted } from '@latentbase/shared/contract/analysis-job'
import { analysisContext, hasAnalysisQueue, type AppEnv, type Deps } from '../deps.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { answerWithJob, wantsJob } from './job-answer.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { problemResponse } from '../problem.ts'

/**
 * Up to this many documents GET /correlations answers in the request. Measured (`npm run bench:analyses`): 10k
 * documents x 16k latents take ~3 s on 2 cores, 100k take ~20 s, which is past what an HTTP client (or an edge
 * function's time limit) should wait: those become an analysis job when an analysis queue is configured.
 */
export const CORRELATIONS_DIRECT_MAX_DOCUMENTS = 20_000

export function registerCorrelationsRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/correlations',
      summary:
        'Latent pairs that co-occur more than chance (NPMI over binary presence), minus adjacent-token and same-label pairs',
      description:
        `Datasets of up to ${CORRELATIONS_DIRECT_MAX_DOCUMENTS.toLocaleString('en')} documents are answered directly (200). ` +
        'Larger ones, and requests with `async=true` or `Prefer: respond-async`, become an analysis job (202) where the server ' +
        'has an analysis queue: poll `GET /jobs/{id}`, then read `GET /jobs/{id}/result`.',
      request: {
        query: CorrelationsQuery.extend({
          async: z.enum(['true', 'false']).optional().describe('true: always answer with a job (202)')
        })
      },
      responses: {
        200: {
          content: { 'application/json': { schema: CorrelationsResult } },
          description: 'pairs sorted by NPMI, descending'
        },
        202: {
          content: { 'application/json': { schema: AnalysisJobAccepted } },
          description: 'queued as an analysis job'
        },
        400: problemResponse('invalid parameters'),
        404: problemResponse('unknown dataset'),
        409: problemResponse('the dataset is not ready')
      }
    }),
    async c => {
      const { async: _async, ...query } = c.req.valid('query')
      const tenant = c.get('tenant')
      if (hasAnalysisQueue(deps)) {
        const ds = await loadReadyDataset(deps.datasets, tenant, query.dataset, 'dataset')
        if (
          wantsJob(c) ||
          ds.manifest.documents.count > (deps.correlationsDirectMaxDocuments ?? CORRELATIONS_DIRECT_MAX_DOCUMENTS)
        ) {
          return answerWithJob(c, deps, { analysis: 'correlations', dataset: query.dataset, request: query })
        }
      }
      return cachedJson(
        c,
        answerDepsOf(deps, deps.embedder.id),
        { route: 'correlations', tenant, datasets: [{ id: query.dataset, role: 'dataset' }], query },
        () => computeCorrelations(analysisContext(deps, tenant, c.req.raw.signal), query)
      )
    }
  )
}
