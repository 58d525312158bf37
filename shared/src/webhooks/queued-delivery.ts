/** @module One attempt of a queued webhook job (dataset or analysis event): wait out notBefore, deliver, re-queue a failure on the retry schedule. */
import type { WebhookJob } from '../contract/job.ts'
import type { SendOptions } from '../queue/job-queue.ts'
import { deliverWebhook, nextRetryDelay } from './deliver.ts'

/** SQS caps a message delay at 15 minutes; longer webhook waits are re-queued hops. */
export const MAX_QUEUE_DELAY_SECONDS = 900

export interface QueuedDeliveryDeps {
  /** The queue the job came from (the encode queue or the analysis queue): waits and retries go back on it. */
  queue: { send(body: WebhookJob, options?: SendOptions): Promise<unknown> }
  fetch?: typeof globalThis.fetch
  /** Told what happened, one line per attempt. */
  log: (line: string) => void
}

/**
 * `webhookOf` looks the target up only once the job is due (the record may have changed or gone since it was queued):
 * null drops the job with `dropped` logged. A delivery that failed and may be retried is re-queued with its attempt
 * count and the schedule's delay; past the schedule it is given up.
 */
export async function deliverQueuedWebhook(
  deps: QueuedDeliveryDeps,
  job: WebhookJob,
  webhookOf: () => Promise<{ url: string; secret: string } | null | undefined>,
  dropped: string
): Promise<void> {
  const now = Math.floor(Date.now() / 1000)
  if (job.notBefore && job.notBefore > now) {
    await deps.queue.send(job, { delaySeconds: Math.min(job.notBefore - now, MAX_QUEUE_DELAY_SECONDS) })
    return
  }
  const webhook = await webhookOf()
  if (!webhook) {
    deps.log(dropped)
    return
  }
  const result = await deliverWebhook(
    { url: webhook.url, secret: webhook.secret, messageId: job.messageId, timestamp: now, body: job.body },
    { fetch: deps.fetch }
  )
  if (result.ok) {
    deps.log(`${job.event} delivered (${result.status})`)
    return
  }
  const delay = result.retry ? nextRetryDelay(job.attempt + 1) : undefined
  if (delay === undefined) {
    deps.log(`${job.event} not delivered, giving up: ${result.error ?? result.status}`)
    return
  }
  deps.log(`${job.event} not delivered (${result.error ?? result.status}); retry ${job.attempt + 1} in ${delay} s`)
  await deps.queue.send(
    { ...job, attempt: job.attempt + 1, notBefore: now + delay },
    { delaySeconds: Math.min(delay, MAX_QUEUE_DELAY_SECONDS) }
  )
}
