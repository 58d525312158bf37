/** @module GET /correlations: latent pairs that co-occur in a dataset's documents, by NPMI, answered directly. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import { CorrelationsQuery, CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { Problem } from '@latentbase/shared/contract/problem'
import type { AppEnv } from '../app.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import { analysisContext, type AnalysisDeps } from './latents.ts'

const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: Problem } }, description })

export function registerCorrelationsRoutes(app: OpenAPIHono<AppEnv>, deps: AnalysisDeps): void {
  app.openapi(createRoute({
    method: 'get', path: '/correlations',
    summary: 'Latent pairs that co-occur more than chance (NPMI over binary presence), minus adjacent-token and same-label pairs',
    request: { query: CorrelationsQuery },
    responses: {
      200: { content: { 'application/json': { schema: CorrelationsResult } }, description: 'pairs sorted by NPMI, descending' },
      400: problemResponse('invalid parameters'), 404: problemResponse('unknown dataset'), 409: problemResponse('the dataset is not ready'),
    },
  }), async (c) => c.json(await computeCorrelations(analysisContext(deps, c.get('tenant'), c.req.raw.signal), c.req.valid('query')), 200))
}
