/** @module Webhook event payloads (the signed body of each delivery). */
import { z } from 'zod'
import { DatasetView } from './dataset.ts'

export const WebhookEvent = z.object({
  type: z.enum(['dataset.ready', 'dataset.failed']),
  timestamp: z.string().describe('ISO 8601 time of the event'),
  data: DatasetView,
})
export type WebhookEvent = z.infer<typeof WebhookEvent>
