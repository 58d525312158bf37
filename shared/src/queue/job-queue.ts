/** @module The JobQueue adapter interface: at-least-once delivery of job messages (embedded or SQS). */

export interface QueueMessage<T> {
  /** Stable for the life of the message (across redeliveries). */
  id: string
  body: T
  /** 1 on first delivery, incremented on each redelivery. */
  receiveCount: number
}

export interface SendOptions {
  /** Do not deliver before this many seconds have passed (retries with backoff). */
  delaySeconds?: number
}

export interface ReceiveOptions {
  max?: number
  /** Long-poll up to this many seconds when the queue is empty. */
  waitSeconds?: number
  /** How long a received message stays invisible before redelivery unless acknowledged or extended. */
  visibilitySeconds?: number
  /** Ends a long poll early (a consumer shutting down); the receive then resolves with what it has. */
  signal?: AbortSignal
}

export interface JobQueue<T = unknown> {
  send(body: T, options?: SendOptions): Promise<string>
  receive(options?: ReceiveOptions): Promise<QueueMessage<T>[]>
  /** Acknowledge: the message is done and is never delivered again. */
  ack(message: QueueMessage<T>): Promise<void>
  /** Keep a long-running message invisible for this many more seconds (a heartbeat). */
  extend(message: QueueMessage<T>, visibilitySeconds: number): Promise<void>
  /** Messages waiting or in flight (approximate for SQS). */
  depth(): Promise<{ waiting: number; inFlight: number }>
  close(): Promise<void>
}
