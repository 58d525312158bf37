/** @module The JobQueue over Amazon SQS (@aws-sdk/client-sqs): bodies are JSON, optionally checked by a zod schema. */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  SendMessageCommand,
  type SQSClient
} from '@aws-sdk/client-sqs'
import type { ZodType } from 'zod'
import type { JobQueue, QueueMessage, ReceiveOptions, SendOptions } from './job-queue.ts'

/** A message whose body is not JSON or fails the schema. It is left in the queue, so the redrive policy takes it to the DLQ. */
export class InvalidMessageError extends Error {
  readonly messageId: string
  readonly receiveCount: number
  readonly rawBody: string
  readonly issues: unknown
  constructor(messageId: string, receiveCount: number, rawBody: string, reason: string, issues?: unknown) {
    super(`SQS message ${messageId} (receive ${receiveCount}) has an invalid body: ${reason}`)
    this.name = 'InvalidMessageError'
    this.messageId = messageId
    this.receiveCount = receiveCount
    this.rawBody = rawBody
    this.issues = issues
  }
}

export interface SqsQueueOptions<T> {
  client: SQSClient
  queueUrl: string
  /** Checks every received body; failures go to onInvalid and are never handed to the consumer. */
  schema?: ZodType<T>
  /** Told about each invalid message (default: console.error). Throwing here does not stop receive(). */
  onInvalid?: (error: InvalidMessageError) => void | Promise<void>
}

/** SQS limits: DelaySeconds 0-900, WaitTimeSeconds 0-20, MaxNumberOfMessages 1-10, VisibilityTimeout 0-43200. */
const MAX_DELAY_SECONDS = 900

export class SqsQueue<T = unknown> implements JobQueue<T> {
  readonly queueUrl: string
  readonly #client: SQSClient
  readonly #schema?: ZodType<T>
  readonly #onInvalid: (error: InvalidMessageError) => void | Promise<void>
  readonly #receipts = new WeakMap<QueueMessage<T>, string>()

  constructor(options: SqsQueueOptions<T>) {
    this.#client = options.client
    this.queueUrl = options.queueUrl
    this.#schema = options.schema
    this.#onInvalid = options.onInvalid ?? (error => console.error(error.message, error.issues ?? ''))
  }

  async send(body: T, options: SendOptions = {}): Promise<string> {
    const delay = Math.ceil(options.delaySeconds ?? 0)
    if (!(delay >= 0 && delay <= MAX_DELAY_SECONDS)) {
      throw new RangeError(
        `SQS delaySeconds must be 0..${MAX_DELAY_SECONDS}, got ${options.delaySeconds}: carry a not-before time in the body for longer delays`
      )
    }
    const out = await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        DelaySeconds: delay || undefined
      })
    )
    if (!out.MessageId) throw new Error('SQS SendMessage returned no MessageId')
    return out.MessageId
  }

  async receive(options: ReceiveOptions = {}): Promise<QueueMessage<T>[]> {
    if (options.signal?.aborted) return []
    let out: ReceiveMessageCommandOutput
    try {
      out = await this.#client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: clamp(options.max ?? 1, 1, 10),
          WaitTimeSeconds: clamp(Math.ceil(options.waitSeconds ?? 0), 0, 20),
          VisibilityTimeout:
            options.visibilitySeconds === undefined ? undefined : clamp(Math.ceil(options.visibilitySeconds), 0, 43200),
          MessageSystemAttributeNames: ['ApproximateReceiveCount']
        }),
        { abortSignal: options.signal }
      )
    } catch (err) {
      // A long poll cut short by the consumer stopping is not an error.
      if (options.signal?.aborted) return []
      throw err
    }
    const messages: QueueMessage<T>[] = []
    for (const m of out.Messages ?? []) {
      if (!m.MessageId || !m.ReceiptHandle) continue
      const receiveCount = Number(m.Attributes?.ApproximateReceiveCount ?? '1')
      const raw = m.Body ?? ''
      const parsed = this.#parse(m.MessageId, receiveCount, raw)
      if (parsed instanceof InvalidMessageError) {
        try {
          await this.#onInvalid(parsed)
        } catch {}
        continue
      }
      const message: QueueMessage<T> = { id: m.MessageId, body: parsed, receiveCount }
      this.#receipts.set(message, m.ReceiptHandle)
      messages.push(message)
    }
    return messages
  }

  async ack(message: QueueMessage<T>): Promise<void> {
    await this.#client.send(
      new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: this.#receiptOf(message) })
    )
    this.#receipts.delete(message)
  }

  async extend(message: QueueMessage<T>, visibilitySeconds: number): Promise<void> {
    await this.#client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: this.#receiptOf(message),
        VisibilityTimeout: clamp(Math.ceil(visibilitySeconds), 0, 43200)
      })
    )
  }

  async depth(): Promise<{ waiting: number; inFlight: number }> {
    const out = await this.#client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesDelayed',
          'ApproximateNumberOfMessagesNotVisible'
        ]
      })
    )
    const a = out.Attributes ?? {}
    return {
      waiting: Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
    }
  }

  /** The client belongs to the caller (it may be shared), so it is not destroyed here. */
  async close(): Promise<void> {}

  #parse(id: string, receiveCount: number, raw: string): T | InvalidMessageError {
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch (err) {
      return new InvalidMessageError(id, receiveCount, raw, `not JSON (${(err as Error).message})`)
    }
    if (!this.#schema) return value as T
    const result = this.#schema.safeParse(value)
    if (result.success) return result.data
    return new InvalidMessageError(
      id,
      receiveCount,
      raw,
      result.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
      result.error.issues
    )
  }

  #receiptOf(message: QueueMessage<T>): string {
    const receipt = this.#receipts.get(message)
    if (!receipt)
      throw new Error(
        `message ${message.id} was not received from this SqsQueue instance (pass the object receive() returned)`
      )
    return receipt
  }
}

function clamp(v: number, lo: number, hi: number) {
  return Math.min(hi, Math.max(lo, v))
}
