/** @module JobQueue producer over a Cloudflare Queues binding: the Worker only sends; containers and Lambdas consume. */
import type { JobQueue, QueueMessage, SendOptions } from './job-queue.ts'

/** The part of the Queue binding used here (declared structurally: no @cloudflare/workers-types globals in shared/). */
export interface CfQueueLike<T> {
  send(body: T, options?: { contentType?: 'json' | 'text' | 'bytes' | 'v8'; delaySeconds?: number }): Promise<unknown>
}

/** Cloudflare Queues accept delays up to 12 hours. */
export const CF_MAX_DELAY_SECONDS = 43_200

export class ProducerOnlyQueueError extends Error {
  constructor(operation: string) {
    super(
      `${operation}() is not available on a Cloudflare Queues producer: jobs are consumed by the GPU container or a Lambda, not the Worker`
    )
    this.name = 'ProducerOnlyQueueError'
  }
}

export class CfQueueProducer<T = unknown> implements JobQueue<T> {
  constructor(
    private readonly queue: CfQueueLike<T>,
    private readonly newId: () => string = () => crypto.randomUUID()
  ) {}

  /**
   * The binding returns no message id, so one is made here; it names the send in logs, not the delivery.
   * Bodies go as JSON (not the default v8 serialisation) so a non-Worker consumer can read them.
   */
  async send(body: T, options: SendOptions = {}): Promise<string> {
    const delay = Math.ceil(options.delaySeconds ?? 0)
    if (!(delay >= 0 && delay <= CF_MAX_DELAY_SECONDS)) {
      throw new RangeError(
        `Cloudflare Queues delaySeconds must be 0..${CF_MAX_DELAY_SECONDS}, got ${options.delaySeconds}`
      )
    }
    await this.queue.send(body, { contentType: 'json', ...(delay ? { delaySeconds: delay } : {}) })
    return this.newId()
  }

  async receive(): Promise<QueueMessage<T>[]> {
    throw new ProducerOnlyQueueError('receive')
  }
  async ack(): Promise<void> {
    throw new ProducerOnlyQueueError('ack')
  }
  async extend(): Promise<void> {
    throw new ProducerOnlyQueueError('extend')
  }
  async depth(): Promise<{ waiting: number; inFlight: number }> {
    throw new ProducerOnlyQueueError('depth')
  }
  async close(): Promise<void> {}
}
