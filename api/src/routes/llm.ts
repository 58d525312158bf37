/** @module POST /diff/hypotheses and POST /hypotheses/verify: the LLM half of the method, answered in the request (dry runs first), or a 503 saying how to configure an LLM. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import {
  HypothesesRequest,
  HypothesesResult,
  VerifyRequest,
  VerifyResult,
  DryRunEstimate,
  RelabelRequest,
  RelabelResult,
  RELABEL_DIRECT_MAX
} from '@latentbase/shared/contract/llm'
import { AnalysisJobAccepted, type AnalysisKind } from '@latentbase/shared/contract/analysis-job'
import type { Context } from 'hono'
import { WebhookSpec } from '@latentbase/shared/contract/dataset'
import { checkWebhookUrl } from '../urls.ts'
import type { LlmClient } from '@latentbase/shared/llm/client'
import type { AnalysisContext } from '../services/context.ts'
import { LLM_NOT_CONFIGURED_DETAIL, requireLlmOf } from '../services/llm-helpers.ts'
import { analysisContext, hasAnalysisQueue, type AppEnv, type Deps } from '../deps.ts'
import { ApiError, problemResponse } from '../problem.ts'
import { generateHypotheses } from '../services/hypotheses-service.ts'
import { verifyHypotheses } from '../services/verify-service.ts'
import { relabelEncoder } from '../services/relabel-service.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { answerWithJob, wantsJob } from './job-answer.ts'

export { LLM_NOT_CONFIGURED_DETAIL }

const common = {
  400: problemResponse('invalid request, or more judge calls than maxCalls (too-many-calls)'),
  404: problemResponse('unknown dataset'),
  409: problemResponse('a dataset is not ready, or the datasets were encoded differently'),
  503: problemResponse(
    'no LLM configured (code llm-not-configured), or its configuration is invalid (llm-misconfigured)'
  )
}

const webhookField = {
  webhook: WebhookSpec.optional().describe('as a job: told analysis.ready / analysis.failed (implies a job)')
}
const HypothesesBody = HypothesesRequest.extend(webhookField)
const VerifyBody = VerifyRequest.extend(webhookField)
const RelabelBody = RelabelRequest.extend(webhookField)

const AsyncQuery = z.object({
  async: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: answer 202 with an analysis job (as `Prefer: respond-async` does)')
})
const accepted = {
  202: {
    content: { 'application/json': { schema: AnalysisJobAccepted } },
    description: 'queued as an analysis job: poll GET /jobs/{id}, then GET /jobs/{id}/result'
  }
}
const ASYNC_NOTE =
  ' With `?async=true`, `Prefer: respond-async` or a `webhook` the request becomes an analysis job (202 + Location); dry runs are always answered directly.'

export function registerLlmRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  /**
   * Queue an LLM analysis once the datasets named in `ready` (id, role) are ready. The routes check the LLM first: a
   * consumer without one would only fail the job later.
   */
  const submit = async (
    c: Context<AppEnv>,
    analysis: AnalysisKind,
    dataset: string,
    body: { webhook?: { url: string; secret?: string } } & Record<string, unknown>,
    ready: Array<[id: string, role: string]> = []
  ) => {
    await Promise.all(ready.map(([id, role]) => loadReadyDataset(deps.datasets, c.get('tenant'), id, role)))
    if (!hasAnalysisQueue(deps)) {
      throw new ApiError(
        503,
        'jobs-not-available',
        'this server runs no analysis queue, so it cannot answer with a job: send the request without async=true / Prefer: respond-async / webhook'
      )
    }
    const { webhook, ...request } = body
    if (webhook) checkWebhookUrl(webhook.url, deps.mode)
    return answerWithJob(c, deps, { analysis, dataset, request, webhook })
  }
  /** Without the webhook: what the services take. */
  const direct = <T extends { webhook?: unknown }>(body: T): Omit<T, 'webhook'> => {
    const { webhook: _w, ...rest } = body
    return rest
  }
  /** An A-vs-B LLM analysis: queued when asked for a job (once `a`, and `b` where given, are ready), else answered here. */
  const answerAB = async <
    B extends { a: string; b: string | string[]; webhook?: { url: string; secret?: string }; dryRun?: boolean },
    R
  >(
    c: Context<AppEnv>,
    body: B,
    what: string,
    analysis: AnalysisKind,
    run: (ctx: AnalysisContext, llm: LlmClient, input: Omit<B, 'webhook'>) => Promise<R>
  ) => {
    const llm = requireLlmOf(deps, what)
    if (wantsJob(c, body.webhook) && !body.dryRun) {
      return submit(c, analysis, body.a, body, [
        [body.a, 'a'],
        ...(typeof body.b === 'string' ? [[body.b, 'b'] as [string, string]] : [])
      ])
    }
    return c.json(await run(analysisContext(deps, c.get('tenant'), c.req.raw.signal), llm, direct(body)), 200)
  }

  app.openapi(
    createRoute({
      method: 'post',
      path: '/diff/hypotheses',
      summary:
        'Hypotheses ("This response ...") about how A differs from B, written by an LLM from the top latents of the diff',
      description:
        "Each top latent's label, its frequencies, one document of A where it fires and one of B where it does not go to the LLM with the question " +
        '(default: the paper\'s "What are the most significant, interesting differences?"). `dryRun: true` returns the estimated tokens and cost and spends nothing. ' +
        'The result lists the rows used as examples (`usedRows`): pass them to POST /hypotheses/verify as `exclude`.',
      request: {
        query: AsyncQuery,
        body: { content: { 'application/json': { schema: HypothesesBody } }, required: true }
      },
      responses: {
        200: {
          content: { 'application/json': { schema: z.union([HypothesesResult, DryRunEstimate]) } },
          description: 'hypotheses (with what failed and the usage), or a dry-run estimate'
        },
        ...accepted,
        422: problemResponse('no latent differs enough to write hypotheses from'),
        ...common
      }
    }),
    c => answerAB(c, c.req.valid('json'), 'POST /diff/hypotheses', 'hypotheses', generateHypotheses)
  )

  app.openapi(
    createRoute({
      method: 'post',
      path: '/hypotheses/verify',
      summary:
        'Verify hypotheses with an LLM judge (YES/NO per document, temperature 0) on held-out samples of A and B',
      description:
        'Reports per hypothesis the verified difference (share YES in A - share YES in B) with a Newcombe 95% interval, a p-value (Fisher or z), ' +
        'a Holm or Bonferroni adjustment across the hypotheses, and validity (the paper: difference > 1 point). `baseline: true` also runs the pure-LLM ' +
        'baseline (the LLM compares samples of A and B directly, then summarizes) on the same judged documents, with the tokens it spent. ' +
        '`judge: "document"` asks once per document for all hypotheses (fewer calls and tokens than the paper\'s per-pair judging). ' +
        '`dryRun: true` returns the estimated tokens and cost and spends nothing; `maxCalls` (default 20,000) refuses runs larger than that.',
      request: { query: AsyncQuery, body: { content: { 'application/json': { schema: VerifyBody } }, required: true } },
      responses: {
        200: {
          content: { 'application/json': { schema: z.union([VerifyResult, DryRunEstimate]) } },
          description: 'verified hypotheses (with what failed and the usage), or a dry-run estimate'
        },
        ...accepted,
        ...common
      }
    }),
    c =>
      answerAB(c, c.req.valid('json'), 'POST /hypotheses/verify', 'hypotheses-verify', (ctx, llm, input) =>
        verifyHypotheses(ctx, llm, input)
      )
  )

  app.openapi(
    createRoute({
      method: 'post',
      path: '/encoders/{id}/relabel',
      summary:
        "Labels for an encoder's latents, written from a dataset's windows (by an LLM, or offline) and scored (detection, fuzzing)",
      description:
        'For each latent an LLM reads windows of the dataset where it fires (firing tokens marked << >>, from the stored top examples) and a few where it does not, ' +
        'and writes a label; the label is then scored on held-out windows: detection (which of a shuffled mix of activating and non-activating windows fire?) ' +
        "and fuzzing (which windows are marked on the right tokens?), both balanced accuracies (0.5 chance). Labels and scores are stored in this tenant's label overlay " +
        'for the encoder, and from then on every diff, correlation, cluster, search and latent page shows them with `labelSource: "llm:<model>"` and `labelScore`. ' +
        'With `labeler: "offline"` no LLM is called and nothing is spent: a label is the words the latent fires on in those windows, ranked by how much more often they are ' +
        'there than in the windows where it is silent, with one example (`labelSource: "offline-examples"`), scored on the same sets by the rule "a window with a label word fires". ' +
        `At most ${RELABEL_DIRECT_MAX} latents are answered directly; more need a job.` +
        ASYNC_NOTE,
      request: {
        params: z.object({ id: z.string().min(1).max(200) }),
        query: AsyncQuery,
        body: { content: { 'application/json': { schema: RelabelBody } }, required: true }
      },
      responses: {
        200: {
          content: { 'application/json': { schema: z.union([RelabelResult, DryRunEstimate]) } },
          description: 'the new labels with their scores (with what failed and the usage), or a dry-run estimate'
        },
        ...accepted,
        422: problemResponse('the dataset has no stored top examples'),
        ...common,
        409: problemResponse('the dataset is not ready, or was encoded with another encoder')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const body = c.req.valid('json')
      // The offline labeler needs no LLM; the LLM one says how to configure one before anything is read.
      const llm = body.labeler === 'offline' ? null : requireLlmOf(deps, 'POST /encoders/{id}/relabel')
      const tenant = c.get('tenant')
      if (!deps.encoders.get(id))
        throw new ApiError(
          404,
          'encoder-not-found',
          `encoder "${id}" is not in this deployment's catalog (GET /encoders lists them)`
        )
      if (wantsJob(c, body.webhook) && !body.dryRun) {
        const ds = await loadReadyDataset(deps.datasets, tenant, body.dataset, 'dataset')
        if (ds.manifest.encoder.id !== id)
          throw new ApiError(
            409,
            'encoder-mismatch',
            `dataset "${ds.record.id}" was encoded with ${ds.manifest.encoder.id}, not ${id}`
          )
        return submit(c, 'relabel', body.dataset, { ...body, encoder: id })
      }
      const count = body.latents ? new Set(body.latents).size : body.limit
      if (!body.dryRun && count > RELABEL_DIRECT_MAX) {
        throw new ApiError(
          400,
          'too-many-latents',
          `${count} latents is more than the ${RELABEL_DIRECT_MAX} a relabel answers in the request: send it with ?async=true (an analysis job), or fewer latents`
        )
      }
      return c.json(await relabelEncoder(analysisContext(deps, tenant, c.req.raw.signal), id, llm, direct(body)), 200)
    }
  )
}
