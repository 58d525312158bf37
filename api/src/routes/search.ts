/** @module GET /search: documents that have a property, found through latents whose labels match it, BM25, or both. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi'
import { SearchQuery, SearchResult } from '@latentbase/shared/contract/search'
import { Problem } from '@latentbase/shared/contract/problem'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import type { AppDeps, AppEnv } from '../app.ts'
import { runSearch } from '../services/search-service.ts'

const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: Problem } }, description })

/** `embedder` defaults to embedderFromEnv(process.env): an OpenAI-compatible endpoint when configured, else offline. */
export function registerSearchRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps & { embedder?: Embedder }): void {
  const embedder = deps.embedder ?? embedderFromEnv(process.env)
  app.openapi(createRoute({
    method: 'get', path: '/search',
    summary: 'Documents with a property: sae (latents whose labels match q, p90-normalized, rank-weighted), bm25 over the text, or hybrid (reciprocal rank fusion)',
    request: { query: SearchQuery },
    responses: {
      200: { content: { 'application/json': { schema: SearchResult } }, description: 'documents, best first, and the latents used' },
      400: problemResponse('invalid parameters (neither q nor latents, a latent that does not exist, ...)'),
      404: problemResponse('unknown dataset'),
      409: problemResponse('the dataset is not ready'),
      422: problemResponse('the encoder has no labels, so q cannot pick latents'),
      503: problemResponse('the embeddings endpoint (label similarity) failed'),
    },
  }), async (c) => c.json(await runSearch({
    objects: deps.objects, datasets: deps.datasets, encoders: deps.encoders, embedder, tenant: c.get('tenant'), signal: c.req.raw.signal,
  }, c.req.valid('query')), 200))
}
