/** @module GET /search: documents that have a property, found through latents whose labels match it, BM25, or both. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { SearchQuery, SearchResult } from '@latentbase/shared/contract/search'
import { analysisContext, type AppEnv, type Deps } from '../deps.ts'
import { estimateSearch, llmOptionName, runSearch } from '../services/search-service.ts'
import { DryRunEstimate } from '@latentbase/shared/contract/llm'
import { requireLlmOf } from '../services/llm-helpers.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { problemResponse } from '../problem.ts'

export function registerSearchRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/search',
      summary:
        'Documents with a property: sae (latents whose labels match q, p90-normalized, rank-weighted), bm25 over the text, or hybrid (reciprocal rank fusion)',
      description:
        '`expand=true`: an LLM adds keywords to the BM25 query and label-style phrases to the latent match. `select=true`: an LLM keeps and ranks the relevant latents among the 100 closest labels. `rerank=true`: an LLM reorders the top 50. `dryRun=true` with any of them: the estimated tokens and cost. ' +
        'Both state the tokens (and cost) they spent in `usage`; a failed LLM step is listed in `failed` and the search answers without it.',
      request: { query: SearchQuery },
      responses: {
        200: {
          content: { 'application/json': { schema: z.union([SearchResult, DryRunEstimate]) } },
          description:
            'documents, best first, and the latents used (or, dryRun=true with expand/rerank, the estimate of the LLM steps)'
        },
        400: problemResponse('invalid parameters (neither q nor latents, a latent that does not exist, ...)'),
        404: problemResponse('unknown dataset'),
        409: problemResponse('the dataset is not ready'),
        422: problemResponse('the encoder has no labels, so q cannot pick latents'),
        503: problemResponse(
          'the embeddings endpoint (label similarity) failed, or expand/rerank asked for without an LLM configured (llm-not-configured)'
        )
      }
    }),
    async c => {
      const query = c.req.valid('query')
      if (query.expand || query.rerank || query.select) requireLlmOf(deps, llmOptionName(query))
      const ctx = analysisContext(deps, c.get('tenant'), c.req.raw.signal)
      if (query.dryRun && (query.expand || query.rerank || query.select))
        return c.json(await estimateSearch(ctx, query), 200)
      // LLM steps are neither free nor deterministic: only searches without them are cached answers.
      if (query.expand || query.rerank || query.select) return c.json(await runSearch(ctx, query), 200)
      return cachedJson(
        c,
        answerDepsOf(deps, deps.embedder.id),
        { route: 'search', tenant: ctx.tenant, datasets: [{ id: query.dataset, role: 'dataset' }], query },
        () => runSearch(ctx, query)
      )
    }
  )
}
