/**
 * @module The analysis consumer for the cloud: heavy analyses (clustering, large correlations) from the analysis
 * queue on SQS, results to S3. Environment: ANALYSIS_QUEUE_URL, BUCKET, AWS_REGION, optional S3_ENDPOINT /
 * SQS_ENDPOINT (compatible servers), EMBEDDINGS_* (label similarity), MAX_RECEIVES. Encoders and their labels come from
 * the catalog the GPU workers publish in the bucket, as the analysis Lambda reads them: no model is loaded. ENCODERS_DIR,
 * when set, reads them from encoder folders instead (a bucket no GPU worker has published to).
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { SQSClient } from '@aws-sdk/client-sqs'
import { awsClientsFromEnv, requiredEnv } from '@latentbase/shared/aws/clients'
import { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { guardedFetch } from '@latentbase/shared/net/url-guard'
import { handleAnalysisMessage, onAnalysisDeadLetter, type AnalysisJobDeps } from './services/analysis-jobs.ts'
import { runConsumer } from '@latentbase/shared/queue/consumer'

export interface AnalysisWorkerOptions {
  env: Record<string, string | undefined>
  /** Default: the catalog published in the bucket, read again (within its TTL) before each job. */
  encoders?: EncoderCatalog
  embedder?: Embedder
  s3?: S3Client
  sqs?: SQSClient
  log?: (line: string) => void
  /** Webhook deliveries (default: the URL guard's fetch). */
  fetch?: typeof globalThis.fetch
  signal: AbortSignal
}

/** Consume the analysis queue until `signal` aborts. */
export async function runAnalysisWorker(o: AnalysisWorkerOptions): Promise<void> {
  const need = requiredEnv(o.env, 'the analysis worker needs ANALYSIS_QUEUE_URL and BUCKET')
  const { s3, sqs } = awsClientsFromEnv(o.env, o)
  const objects = new S3ObjectStore({ client: s3, bucket: need('BUCKET') })
  const queue = new SqsQueue<AnalysisQueueMessage>({
    client: sqs,
    queueUrl: need('ANALYSIS_QUEUE_URL'),
    schema: AnalysisQueueMessage
  })
  const log = o.log ?? ((line: string) => console.log(line))
  const published = o.encoders ? null : new StoreEncoderCatalog(objects)
  const deps: AnalysisJobDeps = {
    objects,
    datasets: new DatasetStore(objects),
    encoders: o.encoders ?? (published as StoreEncoderCatalog),
    embedder: o.embedder ?? embedderFromEnv(o.env),
    queue,
    log,
    // Webhook receivers are strangers' URLs: no private, loopback or metadata addresses.
    fetch: o.fetch ?? guardedFetch()
  }
  const maxReceives = Number(o.env.MAX_RECEIVES ?? 3)
  log(`[analysis] consuming ${queue.queueUrl}`)
  await runConsumer(
    queue,
    async message => {
      try {
        // An encoder published since the last job (or labels imported again) is seen by the next one.
        await published?.refresh()
        await handleAnalysisMessage(deps, message.body, o.signal)
      } catch (err) {
        // The last receive before the queue's redrive policy moves it to the DLQ: the job says why.
        if (message.receiveCount >= maxReceives) await onAnalysisDeadLetter(deps, message.body, (err as Error).message)
        throw err
      }
    },
    {
      concurrency: 1,
      visibilitySeconds: 120,
      heartbeatSeconds: 30,
      signal: o.signal,
      onError: err => log(`[analysis] job failed, will be retried: ${(err as Error).message}`)
    }
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const abort = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      console.log(`[analysis] ${sig}: draining`)
      abort.abort()
    })
  let encoders: EncoderCatalog | undefined
  if (process.env.ENCODERS_DIR) {
    const { catalogOf, findEncoderFolders, loadEncoders } = await import('@latentbase/gpu-worker/registry')
    encoders = catalogOf(await loadEncoders(await findEncoderFolders(process.env.ENCODERS_DIR)))
  }
  await runAnalysisWorker({ env: process.env, encoders, signal: abort.signal }).catch(err => {
    console.error(`[analysis] ${(err as Error).message}`)
    process.exit(2)
  })
}
