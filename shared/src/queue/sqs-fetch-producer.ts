/**
 * @module A send-only JobQueue to Amazon SQS over fetch + SigV4 (SQS's JSON protocol), for runtimes without the AWS SDK
 * or node: modules (the Cloudflare Worker): the Worker then feeds the same SQS queue the GPU container consumes.
 */
import type { JobQueue, QueueMessage, SendOptions } from './job-queue.ts'
import { ProducerOnlyQueueError } from './cf-queue-producer.ts'
import { signRequest, type AwsCredentials } from '../net/sigv4.ts'

export interface SqsFetchProducerOptions {
  queueUrl: string
  region: string
  credentials: AwsCredentials
  /** Where requests go (default: the queue URL's origin); a compatible server in tests. */
  endpoint?: string
  fetch?: typeof globalThis.fetch
}

const MAX_DELAY_SECONDS = 900

export class SqsFetchProducer<T = unknown> implements JobQueue<T> {
  constructor(private readonly o: SqsFetchProducerOptions) {}

  async send(body: T, options: SendOptions = {}): Promise<string> {
    const delay = Math.ceil(options.delaySeconds ?? 0)
    if (!(delay >= 0 && delay <= MAX_DELAY_SECONDS))
      throw new RangeError(`SQS delaySeconds must be 0..${MAX_DELAY_SECONDS}, got ${options.delaySeconds}`)
    const url = this.o.endpoint ?? new URL(this.o.queueUrl).origin + '/'
    const payload = JSON.stringify({
      QueueUrl: this.o.queueUrl,
      MessageBody: JSON.stringify(body),
      ...(delay ? { DelaySeconds: delay } : {})
    })
    const headers = await signRequest({
      method: 'POST',
      url,
      body: payload,
      region: this.o.region,
      service: 'sqs',
      credentials: this.o.credentials,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' }
    })
    const res = await (this.o.fetch ?? fetch)(url, { method: 'POST', headers, body: payload })
    const text = await res.text()
    if (!res.ok) throw new Error(`SQS SendMessage failed: HTTP ${res.status}: ${text.slice(0, 300)}`)
    const id = (JSON.parse(text) as { MessageId?: string }).MessageId
    if (!id) throw new Error('SQS SendMessage returned no MessageId')
    return id
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
