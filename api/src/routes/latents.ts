/** @module GET /latents/{latent}: a latent's page (frequency, value distribution, top examples with per-token activations). */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import { LatentPage, LatentPageQuery, LatentParams } from '@latentbase/shared/contract/latents'
import { analysisContext, type AppEnv, type Deps } from '../deps.ts'
import { getLatentPage } from '../services/latent-page-service.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { problemResponse } from '../problem.ts'

export function registerLatentRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/latents/{latent}',
      summary: "A latent's page in a dataset: label, frequency, value histogram and top examples",
      request: { params: LatentParams, query: LatentPageQuery },
      responses: {
        200: { content: { 'application/json': { schema: LatentPage } }, description: 'the latent page' },
        400: problemResponse('invalid parameters'),
        404: problemResponse("unknown dataset, or a latent outside the encoder's range"),
        409: problemResponse('the dataset is not ready')
      }
    }),
    async c => {
      const { latent } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        answerDepsOf(deps),
        { route: 'latent', tenant, datasets: [{ id: query.dataset, role: 'dataset' }], query: { latent, ...query } },
        () => getLatentPage(analysisContext(deps, tenant, c.req.raw.signal), latent, query)
      )
    }
  )
}
