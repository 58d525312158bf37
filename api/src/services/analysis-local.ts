/**
 * @module Local mode's analysis jobs: an embedded queue on disk and its consumer in the API's process. Kept apart from
 * analysis-jobs.ts because it needs node:fs (the embedded queue), and the Worker bundles analysis-jobs.ts.
 */
import { join } from 'node:path'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import type { QueueMessage } from '@latentbase/shared/queue/job-queue'
import type { ConsumerOptions } from '@latentbase/shared/queue/consumer'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { onAnalysisDeadLetter, startAnalysisConsumer, type AnalysisJobDeps } from './analysis-jobs.ts'

export interface LocalAnalysis {
  queue: EmbeddedQueue<AnalysisQueueMessage>
  /** Stops receiving, finishes the job in hand, closes the queue. */
  close(): Promise<void>
}

/** Local mode: an embedded queue in `DATA_DIR/analysis-queue` and its consumer in this process. */
export function startLocalAnalysis(
  options: Omit<AnalysisJobDeps, 'queue'> & {
    dataDir: string
    concurrency?: number
    maxReceives?: number
    consumer?: Omit<ConsumerOptions<AnalysisQueueMessage>, 'signal'>
  }
): LocalAnalysis {
  const { dataDir, concurrency, maxReceives, consumer, ...rest } = options
  let deps: AnalysisJobDeps | undefined
  const queue = new EmbeddedQueue<AnalysisQueueMessage>(join(dataDir, 'analysis-queue'), {
    maxReceives: maxReceives ?? 3,
    deadLetter: (message: QueueMessage<AnalysisQueueMessage>, reason: string) =>
      onAnalysisDeadLetter(deps!, message.body, reason)
  })
  deps = { ...rest, queue }
  const abort = new AbortController()
  const done = startAnalysisConsumer(deps, { ...consumer, signal: abort.signal, concurrency: concurrency ?? 1 })
  return {
    queue,
    async close() {
      abort.abort()
      await done
      await queue.close()
    }
  }
}
