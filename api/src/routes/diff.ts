/** @module GET /diff: which latents fire more in dataset A than in the B datasets, with statistics. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import { DiffQuery, DiffResult } from '@latentbase/shared/contract/diff'
import { analysisContext, type AppEnv, type Deps } from '../deps.ts'
import { runDiff } from '../services/diff-service.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { problemResponse } from '../problem.ts'

export function registerDiffRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/diff',
      summary: 'Latents that fire more in A than in B (each latent against the B where it is most frequent)',
      request: { query: DiffQuery },
      responses: {
        200: { content: { 'application/json': { schema: DiffResult } }, description: 'latent differences, sorted' },
        400: problemResponse('invalid parameters'),
        404: problemResponse('unknown dataset'),
        409: problemResponse('a dataset is not ready, or the datasets were encoded with different encoders')
      }
    }),
    async c => {
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      const datasets = [{ id: query.a, role: 'a' }, ...query.b.map(id => ({ id, role: 'b' }))]
      return cachedJson(c, answerDepsOf(deps, deps.embedder.id), { route: 'diff', tenant, datasets, query }, () =>
        runDiff(analysisContext(deps, tenant, c.req.raw.signal), query)
      )
    }
  )
}
