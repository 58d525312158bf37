/** @module Webhook event payloads (the signed body of each delivery). */
import { z } from 'zod'
import { DatasetView } from './dataset.ts'
import { AnalysisJobView } from './analysis-job.ts'
import { DriftReport } from './drift.ts'

export const WebhookEvent = z.object({
  type: z.enum([
    'dataset.ready',
    'dataset.failed',
    'dataset.drift',
    'dataset.version',
    'dataset.version-failed',
    'analysis.ready',
    'analysis.failed'
  ]),
  timestamp: z.string().describe('ISO 8601 time of the event'),
  /** A dataset for dataset.* events (dataset.version: a new version landed; dataset.drift: with its report), an analysis job for analysis.* events. */
  data: z.union([DatasetView.extend({ drift: DriftReport }), DatasetView, AnalysisJobView])
})
export type WebhookEvent = z.infer<typeof WebhookEvent>
