/** @module GET /latents/{latent}: a latent's page (frequency, value distribution, top examples with per-token activations). */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import { LatentPage, LatentPageQuery, LatentParams } from '@latentbase/shared/contract/latents'
import { Problem } from '@latentbase/shared/contract/problem'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { AppDeps, AppEnv } from '../app.ts'
import type { AnalysisContext } from '../services/context.ts'
import { getLatentPage } from '../services/latent-page-service.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'

/** What the analysis routes need beyond AppDeps. The latent page itself never embeds anything. */
export type AnalysisDeps = AppDeps & { embedder?: Embedder }

const noEmbedder: Embedder = {
  id: 'none', dimensions: 0,
  embed: () => Promise.reject(new Error('no embedder is configured for this deployment')),
}

/** The AnalysisContext of one request. */
export function analysisContext(deps: AnalysisDeps, tenant: string, signal?: AbortSignal): AnalysisContext {
  return { objects: deps.objects, datasets: deps.datasets, encoders: deps.encoders, embedder: deps.embedder ?? noEmbedder, tenant, signal, windowMiner: deps.windowMiner }
}

const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: Problem } }, description })

export function registerLatentRoutes(app: OpenAPIHono<AppEnv>, deps: AnalysisDeps): void {
  app.openapi(createRoute({
    method: 'get', path: '/latents/{latent}', summary: "A latent's page in a dataset: label, frequency, value histogram and top examples",
    request: { params: LatentParams, query: LatentPageQuery },
    responses: {
      200: { content: { 'application/json': { schema: LatentPage } }, description: 'the latent page' },
      400: problemResponse('invalid parameters'),
      404: problemResponse('unknown dataset, or a latent outside the encoder\'s range'),
      409: problemResponse('the dataset is not ready'),
    },
  }), async (c) => {
    const { latent } = c.req.valid('param')
    const query = c.req.valid('query')
    const tenant = c.get('tenant')
    return cachedJson(c, answerDepsOf(deps), { route: 'latent', tenant, datasets: [{ id: query.dataset, role: 'dataset' }], query: { latent, ...query } },
      () => getLatentPage(analysisContext(deps, tenant, c.req.raw.signal), latent, query))
  })
}
