/** @module POST /diff/hypotheses and POST /hypotheses/verify: the LLM half of the method, answered in the request (dry runs first), or a 503 saying how to configure an LLM. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { HypothesesRequest, HypothesesResult, VerifyRequest, VerifyResult, DryRunEstimate } from '@latentbase/shared/contract/llm'
import { Problem } from '@latentbase/shared/contract/problem'
import { LlmClient, llmConfigFromEnv } from '@latentbase/shared/llm/client'
import type { AppDeps, AppEnv } from '../app.ts'
import { ApiError } from '../problem.ts'
import { generateHypotheses } from '../services/hypotheses-service.ts'
import { verifyHypotheses } from '../services/verify-service.ts'

export type LlmRouteDeps = AppDeps & {
  /** The LLM; null: none configured (503). Left out: read once from the environment (LLM_BASE_URL, LLM_MODEL, ...). */
  llm?: LlmClient | null
  env?: Record<string, string | undefined>
}

export const LLM_NOT_CONFIGURED_DETAIL = 'no LLM is configured: set LLM_BASE_URL (any OpenAI-compatible endpoint, e.g. https://api.openai.com/v1, a vLLM or Ollama server) and LLM_MODEL, '
  + 'plus LLM_API_KEY if the server needs one; LLM_PRICE_IN and LLM_PRICE_OUT (per million tokens) make results and dry runs state their cost'

const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: Problem } }, description })
const common = {
  400: problemResponse('invalid request, or more judge calls than maxCalls (too-many-calls)'), 404: problemResponse('unknown dataset'), 409: problemResponse('a dataset is not ready, or the datasets were encoded differently'),
  503: problemResponse('no LLM configured (code llm-not-configured), or its configuration is invalid (llm-misconfigured)'),
}

export function registerLlmRoutes(app: OpenAPIHono<AppEnv>, deps: LlmRouteDeps): void {
  let resolved: { llm: LlmClient | null; error?: string } | undefined
  const llmOf = () => {
    if (!resolved) {
      if (deps.llm !== undefined) resolved = { llm: deps.llm }
      else {
        try {
          const config = llmConfigFromEnv(deps.env ?? process.env)
          resolved = { llm: config ? new LlmClient(config) : null }
        } catch (err) {
          resolved = { llm: null, error: (err as Error).message }
        }
      }
    }
    return resolved
  }
  /** The configured LLM, or the 503 that says how to configure one. */
  const requireLlm = (): LlmClient => {
    const r = llmOf()
    if (r.llm) return r.llm
    if (r.error) throw new ApiError(503, 'llm-misconfigured', `the LLM configuration is invalid: ${r.error}`)
    throw new ApiError(503, 'llm-not-configured', LLM_NOT_CONFIGURED_DETAIL)
  }

  app.openapi(createRoute({
    method: 'post', path: '/diff/hypotheses',
    summary: 'Hypotheses ("This response ...") about how A differs from B, written by an LLM from the top latents of the diff',
    description: 'Each top latent\'s label, its frequencies, one document of A where it fires and one of B where it does not go to the LLM with the question '
      + '(default: the paper\'s "What are the most significant, interesting differences?"). `dryRun: true` returns the estimated tokens and cost and spends nothing. '
      + 'The result lists the rows used as examples (`usedRows`): pass them to POST /hypotheses/verify as `exclude`.',
    request: { body: { content: { 'application/json': { schema: HypothesesRequest } }, required: true } },
    responses: {
      200: { content: { 'application/json': { schema: z.union([HypothesesResult, DryRunEstimate]) } }, description: 'hypotheses (with what failed and the usage), or a dry-run estimate' },
      422: problemResponse('no latent differs enough to write hypotheses from'), ...common,
    },
  }), async (c) => {
    const llm = requireLlm()
    return c.json(await generateHypotheses(deps, c.get('tenant'), llm, c.req.valid('json')), 200)
  })

  app.openapi(createRoute({
    method: 'post', path: '/hypotheses/verify',
    summary: 'Verify hypotheses with an LLM judge (YES/NO per document, temperature 0) on held-out samples of A and B',
    description: 'Reports per hypothesis the verified difference (share YES in A - share YES in B) with a Newcombe 95% interval, a p-value (Fisher or z), '
      + 'a Holm or Bonferroni adjustment across the hypotheses, and validity (the paper: difference > 1 point). `baseline: true` also runs the pure-LLM '
      + 'baseline (the LLM compares samples of A and B directly, then summarizes) on the same judged documents, with the tokens it spent. '
      + '`judge: "document"` asks once per document for all hypotheses (fewer calls and tokens than the paper\'s per-pair judging). '
      + '`dryRun: true` returns the estimated tokens and cost and spends nothing; `maxCalls` (default 20,000) refuses runs larger than that.',
    request: { body: { content: { 'application/json': { schema: VerifyRequest } }, required: true } },
    responses: {
      200: { content: { 'application/json': { schema: z.union([VerifyResult, DryRunEstimate]) } }, description: 'verified hypotheses (with what failed and the usage), or a dry-run estimate' },
      ...common,
    },
  }), async (c) => {
    const llm = requireLlm()
    return c.json(await verifyHypotheses(deps, c.get('tenant'), llm, c.req.valid('json')), 200)
  })
}
