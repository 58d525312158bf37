/** @module GET /latents: a dataset's latents (most frequent, or closest to a text); GET /latents/{latent}: a latent's page (frequency, value distribution, top examples with per-token activations); GET /latents/{latent}/intervals: examples below the top ones. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import {
  LatentIntervals,
  LatentIntervalsQuery,
  LatentList,
  LatentListQuery,
  LatentPage,
  LatentPageQuery,
  LatentParams
} from '@latentbase/shared/contract/latents'
import { analysisContext, type AppEnv, type Deps } from '../deps.ts'
import { getLatentPage } from '../services/latent-page-service.ts'
import { listLatents } from '../services/latent-list-service.ts'
import { latentIntervals } from '../services/latent-intervals-service.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { problemResponse } from '../problem.ts'

export function registerLatentRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/latents',
      summary: "A dataset's latents: most frequent first, or ranked by how close their labels are to a text (q)",
      request: { query: LatentListQuery },
      responses: {
        200: { content: { 'application/json': { schema: LatentList } }, description: 'a page of the latents' },
        400: problemResponse('invalid parameters, or a slice naming an unknown latent or metadata field'),
        404: problemResponse('unknown dataset'),
        409: problemResponse('the dataset is not ready'),
        422: problemResponse('q was given but the encoder has no labels'),
        503: problemResponse('q was given and the embedder failed')
      }
    }),
    async c => {
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        // With q the answer depends on the label embedder, as a search's does.
        answerDepsOf(deps, deps.embedder.id),
        { route: 'latents', tenant, datasets: [{ id: query.dataset, role: 'dataset' }], query },
        () => listLatents(analysisContext(deps, tenant, c.req.raw.signal), query)
      )
    }
  )
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
  app.openapi(
    createRoute({
      method: 'get',
      path: '/latents/{latent}/intervals',
      summary:
        "Documents sampled from equal-width intervals of a latent's pooled value, with token windows where the deployment holds the encoder",
      request: { params: LatentParams, query: LatentIntervalsQuery },
      responses: {
        200: {
          content: { 'application/json': { schema: LatentIntervals } },
          description: 'the intervals, highest first'
        },
        400: problemResponse('invalid parameters, or a slice naming an unknown latent or metadata field'),
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
        // Windows or not depends on whether this process holds the encoders.
        answerDepsOf(deps, deps.windowMiner ? 'windows' : ''),
        {
          route: 'latent-intervals',
          tenant,
          datasets: [{ id: query.dataset, role: 'dataset' }],
          query: { latent, ...query }
        },
        () => latentIntervals(analysisContext(deps, tenant, c.req.raw.signal), latent, query)
      )
    }
  )
}
