/** @module The receive loop shared by the all-in-one local server and the container worker: leases, heartbeats, acks, retry backoff, graceful stop. */
import type { JobQueue, QueueMessage } from './job-queue.ts'

export type MessageHandler<T> = (message: QueueMessage<T>) => Promise<void>

export interface ConsumerOptions<T> {
  /** Messages handled at the same time. */
  concurrency?: number
  /** How long a received message stays hidden; the heartbeat renews it while the handler runs. */
  visibilitySeconds?: number
  /** How often the lease is renewed; must be shorter than visibilitySeconds. */
  heartbeatSeconds?: number
  /** Long-poll length of each receive (SQS allows at most 20). */
  waitSeconds?: number
  /** Stops receiving; work already started is finished (and acked) before runConsumer resolves. */
  signal?: AbortSignal
  /** Handler failures, heartbeat and ack failures, receive failures. Default: console.error. */
  onError?: (error: unknown, message?: QueueMessage<T>) => void
  /**
   * After a handler throws, make the message visible again after this many seconds (given its
   * receiveCount); undefined leaves it hidden until its visibility runs out.
   * Default: 5 s doubling per receive, capped at visibilitySeconds.
   */
  retryDelaySeconds?: (receiveCount: number) => number | undefined
}

export async function runConsumer<T>(
  queue: JobQueue<T>,
  handler: MessageHandler<T>,
  options: ConsumerOptions<T> = {}
): Promise<void> {
  const concurrency = options.concurrency ?? 1
  const visibilitySeconds = options.visibilitySeconds ?? 300
  const heartbeatSeconds = options.heartbeatSeconds ?? 60
  const waitSeconds = options.waitSeconds ?? 20
  const signal = options.signal
  const onError =
    options.onError ??
    ((error, message) => console.error(`queue consumer${message ? ` (message ${message.id})` : ''}:`, error))
  const retryDelay =
    options.retryDelaySeconds ?? ((n: number) => Math.min(visibilitySeconds, 5 * 2 ** Math.max(0, n - 1)))
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError('concurrency must be an integer >= 1')
  if (!(heartbeatSeconds > 0 && heartbeatSeconds < visibilitySeconds)) {
    throw new RangeError(
      `heartbeatSeconds (${heartbeatSeconds}) must be > 0 and shorter than visibilitySeconds (${visibilitySeconds})`
    )
  }

  const handle = async (message: QueueMessage<T>) => {
    let beat: Promise<void> = Promise.resolve()
    let beating = false
    const timer = setInterval(() => {
      if (beating) return
      beating = true
      beat = queue
        .extend(message, visibilitySeconds)
        .catch(err => onError(err, message))
        .finally(() => {
          beating = false
        })
    }, heartbeatSeconds * 1000)
    let failed = false
    try {
      await handler(message)
    } catch (err) {
      failed = true
      onError(err, message)
    } finally {
      clearInterval(timer)
      // A renewal still on the wire would otherwise land after (and undo) the backoff below.
      await beat
    }
    try {
      if (!failed) await queue.ack(message)
      else {
        const delay = retryDelay(message.receiveCount)
        if (delay !== undefined) await queue.extend(message, delay)
      }
    } catch (err) {
      onError(err, message)
    }
  }

  const active = new Set<Promise<void>>()
  let receiveFailures = 0
  while (!signal?.aborted) {
    const free = concurrency - active.size
    if (free <= 0) {
      await Promise.race(active)
      continue
    }
    const started = Date.now()
    let messages: QueueMessage<T>[]
    try {
      messages = await queue.receive({ max: free, waitSeconds, visibilitySeconds, signal })
      receiveFailures = 0
    } catch (err) {
      onError(err)
      receiveFailures++
      await sleep(Math.min(30_000, 500 * 2 ** Math.min(6, receiveFailures - 1)), signal)
      continue
    }
    for (const message of messages) {
      if (signal?.aborted) {
        // Received while stopping: hand it straight back rather than start new work.
        await queue.extend(message, 0).catch(err => onError(err, message))
        continue
      }
      const p: Promise<void> = handle(message).finally(() => active.delete(p))
      active.add(p)
    }
    // A queue that answers empty at once (closed, or no long polling) must not spin.
    if (messages.length === 0 && Date.now() - started < 50) await sleep(200, signal)
  }
  await Promise.allSettled(active)
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
