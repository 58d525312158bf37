/** @module Answering a request with an analysis job (202, Location, the job's link): shared by /clusters, /correlations and the LLM routes. */
import type { Context } from 'hono'
import type { AnalysisKind } from '@latentbase/shared/contract/analysis-job'
import { generateWebhookSecret } from '@latentbase/shared/webhooks/sign'
import type { AppEnv, QueuedDeps } from '../deps.ts'
import { jobHref, submitAnalysisJob } from '../services/analysis-jobs.ts'

/** The client asked for a job: `?async=true`, `Prefer: respond-async`, or a webhook to be told when it is done. */
export function wantsJob(c: Context<AppEnv>, webhook?: unknown): boolean {
  return Boolean(webhook) || c.req.query('async') === 'true' || /respond-async/i.test(c.req.header('prefer') ?? '')
}

export interface JobSpec {
  analysis: AnalysisKind
  dataset: string
  request: Record<string, unknown>
  /** Checked by the caller (checkWebhookUrl); without a secret one is generated and returned once, in the 202. */
  webhook?: { url: string; secret?: string }
}

/** Queue the analysis and answer 202 with its Location; the generated webhook secret, if any, is in the body. */
export async function answerWithJob(
  c: Context<AppEnv>,
  deps: Pick<QueuedDeps, 'objects' | 'analysisQueue' | 'now'>,
  spec: JobSpec
) {
  const { webhook, ...job } = spec
  const generatedSecret = webhook && !webhook.secret ? generateWebhookSecret() : undefined
  const record = await submitAnalysisJob(
    { objects: deps.objects, queue: deps.analysisQueue, now: deps.now },
    c.get('tenant'),
    {
      ...job,
      ...(webhook ? { webhook: { url: webhook.url, secret: webhook.secret ?? generatedSecret! } } : {})
    }
  )
  c.header('Location', jobHref(record.id))
  return c.json(
    {
      job: { id: record.id, status: record.status, href: jobHref(record.id) },
      ...(generatedSecret ? { webhookSecret: generatedSecret } : {})
    },
    202
  )
}
