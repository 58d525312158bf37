/** @module Job messages carried by the queue. Kept tiny: the dataset record in the store holds the spec. */
import { z } from 'zod'

/** Plans the encoding: stages the source into parts and queues one encode-part job per part. */
export const EncodeJob = z.object({
  kind: z.literal('encode'),
  tenant: z.string().min(1),
  datasetId: z.string().min(1),
  version: z.number().int().min(2).optional().describe('an append: plans the batch of this version (see job/append)')
})
/** Encodes one part of a planned dataset; whoever finishes the last part commits the manifest. */
export const EncodePartJob = z.object({
  kind: z.literal('encode-part'),
  tenant: z.string().min(1),
  datasetId: z.string().min(1),
  part: z.number().int().nonnegative(),
  version: z.number().int().min(2).optional().describe('a part of an appended batch')
})
export const WebhookJob = z.object({
  kind: z.literal('webhook'),
  tenant: z.string().min(1),
  datasetId: z.string().min(1),
  event: z.enum([
    'dataset.ready',
    'dataset.failed',
    'dataset.drift',
    'dataset.version',
    'dataset.version-failed',
    'analysis.ready',
    'analysis.failed'
  ]),
  /** Analysis events only: the job whose record holds the webhook (they travel on the analysis queue). */
  jobId: z.string().min(1).optional(),
  /** The Standard Webhooks message id: stable across retries so receivers can deduplicate. */
  messageId: z.string().min(1),
  /** The exact body that is signed, so every retry sends the same bytes. */
  body: z.string(),
  /** When the event happened (epoch seconds); each attempt is signed with its own send time. */
  timestamp: z.number().int(),
  attempt: z.number().int().nonnegative().default(0),
  /** Earliest send time (epoch seconds): retries wait longer than a queue's maximum delay. */
  notBefore: z.number().int().optional()
})
export const JobMessage = z.discriminatedUnion('kind', [EncodeJob, EncodePartJob, WebhookJob])
export type JobMessage = z.infer<typeof JobMessage>
export type EncodeJob = z.infer<typeof EncodeJob>
export type EncodePartJob = z.infer<typeof EncodePartJob>
export type WebhookJob = z.infer<typeof WebhookJob>
