/** @module Typed client methods for the LLM endpoints (hypotheses from a diff, their verification), on the server's contracts. */
import { z } from 'zod'
import {
  DryRunEstimate,
  type HypothesesRequest,
  HypothesesResult,
  type VerifyRequest,
  VerifyResult,
  type RelabelRequest,
  RelabelResult
} from '@latentbase/shared/contract/llm'
import { AnalysisJobAccepted } from '@latentbase/shared/contract/analysis-job'
import type { Call } from './analyses.ts'

export type { HypothesesResult, VerifyResult, DryRunEstimate, RelabelResult }
export type RelabelParams = Omit<z.input<typeof RelabelRequest>, 'dryRun'>
export type JobAccepted = z.infer<typeof AnalysisJobAccepted>
/** Told analysis.ready / analysis.failed when the job ends (a secret is generated and returned once when left out). */
export type JobWebhook = { webhook?: { url: string; secret?: string } }
const RelabelAnswer = z.union([RelabelResult, DryRunEstimate])
export type HypothesesParams = Omit<z.input<typeof HypothesesRequest>, 'dryRun'>
export type VerifyParams = Omit<z.input<typeof VerifyRequest>, 'dryRun'>

const HypothesesAnswer = z.union([HypothesesResult, DryRunEstimate])
const VerifyAnswer = z.union([VerifyResult, DryRunEstimate])

export function llmClient(call: Call) {
  return {
    hypotheses: {
      /** POST /diff/hypotheses: hypotheses about how a differs from b, citing latent ids. */
      create: async (params: HypothesesParams): Promise<HypothesesResult> =>
        HypothesesResult.parse(await call(HypothesesAnswer, 'POST', '/diff/hypotheses', { ...params, dryRun: false })),
      /** The tokens and cost the same request would spend; spends nothing. */
      estimate: async (params: HypothesesParams): Promise<DryRunEstimate> =>
        DryRunEstimate.parse(await call(HypothesesAnswer, 'POST', '/diff/hypotheses', { ...params, dryRun: true })),
      /** POST /hypotheses/verify: judge hypotheses on held-out documents (pass a hypotheses result's usedRows as exclude). */
      verify: async (params: VerifyParams): Promise<VerifyResult> =>
        VerifyResult.parse(await call(VerifyAnswer, 'POST', '/hypotheses/verify', { ...params, dryRun: false })),
      estimateVerify: async (params: VerifyParams): Promise<DryRunEstimate> =>
        DryRunEstimate.parse(await call(VerifyAnswer, 'POST', '/hypotheses/verify', { ...params, dryRun: true })),
      /** Queue POST /diff/hypotheses as an analysis job (202); wait with analyses.jobs.wait, read with jobs.resultAll. */
      submit: (params: HypothesesParams & JobWebhook): Promise<JobAccepted> =>
        call(AnalysisJobAccepted, 'POST', '/diff/hypotheses?async=true', { ...params, dryRun: false }),
      /** Queue POST /hypotheses/verify as an analysis job (202). */
      submitVerify: (params: VerifyParams & JobWebhook): Promise<JobAccepted> =>
        call(AnalysisJobAccepted, 'POST', '/hypotheses/verify?async=true', { ...params, dryRun: false }),
      /** Hypotheses from the diff, then verified on documents other than the examples that produced them. */
      async createAndVerify(
        params: HypothesesParams & Pick<VerifyParams, 'perDataset' | 'seed' | 'baseline' | 'correction'>
      ): Promise<{ hypotheses: HypothesesResult; verification: VerifyResult | null }> {
        const { perDataset, seed, baseline, correction, ...h } = params
        const hypotheses = await this.create(h)
        const b = Array.isArray(h.b) ? h.b : [h.b]
        if (!hypotheses.hypotheses.length) return { hypotheses, verification: null }
        if (b.length !== 1) throw new Error('createAndVerify verifies against exactly one b; call verify per b')
        const verification = await this.verify({
          a: h.a,
          b: b[0],
          hypotheses: hypotheses.hypotheses.map(x => ({ text: x.text, latents: x.latents })),
          exclude: hypotheses.usedRows,
          perDataset,
          seed,
          baseline,
          correction,
          // The same slices: judged documents come from the parts that were compared.
          aWhere: h.aWhere,
          bWhere: h.bWhere?.[0]
        })
        return { hypotheses, verification }
      }
    },
    labels: {
      /**
       * POST /encoders/:id/relabel: labels for latents of `encoder`, written from windows of `params.dataset` by the LLM (or,
       * with `labeler: 'offline'`, without one) and scored (detection, fuzzing); stored for this tenant, then shown in every
       * result. At most 50 latents directly: use submit beyond.
       */
      relabel: async (encoder: string, params: RelabelParams): Promise<RelabelResult> =>
        RelabelResult.parse(
          await call(RelabelAnswer, 'POST', `/encoders/${encodeURIComponent(encoder)}/relabel`, {
            ...params,
            dryRun: false
          })
        ),
      estimate: async (encoder: string, params: RelabelParams): Promise<DryRunEstimate> =>
        DryRunEstimate.parse(
          await call(RelabelAnswer, 'POST', `/encoders/${encodeURIComponent(encoder)}/relabel`, {
            ...params,
            dryRun: true
          })
        ),
      /** The relabel as an analysis job (202), for many latents. */
      submit: (encoder: string, params: RelabelParams & JobWebhook): Promise<JobAccepted> =>
        call(AnalysisJobAccepted, 'POST', `/encoders/${encodeURIComponent(encoder)}/relabel?async=true`, {
          ...params,
          dryRun: false
        })
    }
  }
}
