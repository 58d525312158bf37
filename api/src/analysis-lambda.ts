/**
 * @module The analysis consumer as an AWS Lambda subscribed to the analysis SQS queue (event source mapping with
 * ReportBatchItemFailures): each record is one analysis job or webhook delivery; a failed record is reported so only
 * it is retried, and on its last receive (MAX_RECEIVES, the queue's maxReceiveCount) the job is marked failed with why
 * before SQS moves it to the dead-letter queue. Environment as api/src/analysis-worker.ts.
 */
import { awsClientsFromEnv, requiredEnv } from '@latentbase/shared/aws/clients'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { guardedFetch } from '@latentbase/shared/net/url-guard'
import { handleAnalysisMessage, onAnalysisDeadLetter, type AnalysisJobDeps } from './services/analysis-jobs.ts'

/** The fields of an SQS event record this handler reads (aws-lambda's SQSRecord). */
export interface SqsRecord {
  messageId: string
  body: string
  attributes: { ApproximateReceiveCount: string }
}
export interface SqsEvent {
  Records: SqsRecord[]
}
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>
}

/** Handle a batch one record at a time; the failures are returned, never thrown, so the rest of the batch is acknowledged. */
export async function handleAnalysisBatch(
  event: SqsEvent,
  deps: AnalysisJobDeps,
  maxReceives: number
): Promise<SqsBatchResponse> {
  const failures: SqsBatchResponse['batchItemFailures'] = []
  for (const record of event.Records) {
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1')
    let body: unknown
    try {
      body = JSON.parse(record.body)
      await handleAnalysisMessage(deps, body)
    } catch (err) {
      const reason = (err as Error).message
      deps.log?.(`[analysis] message ${record.messageId} failed (receive ${receiveCount} of ${maxReceives}): ${reason}`)
      if (receiveCount >= maxReceives && body !== undefined) {
        try {
          await onAnalysisDeadLetter(deps, body as AnalysisQueueMessage, reason)
        } catch (deadLetterErr) {
          deps.log?.(`[analysis] could not mark ${record.messageId} failed: ${(deadLetterErr as Error).message}`)
        }
      }
      failures.push({ itemIdentifier: record.messageId })
    }
  }
  return { batchItemFailures: failures }
}

let deps: AnalysisJobDeps | undefined

function depsFromEnv(env: Record<string, string | undefined>): AnalysisJobDeps {
  const need = requiredEnv(env, 'the analysis Lambda needs ANALYSIS_QUEUE_URL and BUCKET')
  const { s3, sqs } = awsClientsFromEnv(env)
  const objects = new S3ObjectStore({ client: s3, bucket: need('BUCKET') })
  return {
    objects,
    datasets: new DatasetStore(objects),
    encoders: new StoreEncoderCatalog(objects),
    embedder: embedderFromEnv(env),
    // Webhook retries go back on the analysis queue.
    queue: new SqsQueue<AnalysisQueueMessage>({ client: sqs, queueUrl: need('ANALYSIS_QUEUE_URL') }),
    log: line => console.log(line),
    // Webhook receivers are strangers' URLs: no private, loopback or metadata addresses.
    fetch: guardedFetch()
  }
}

/** The Lambda entry (`api/src/analysis-lambda.handler`). */
export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  deps ??= depsFromEnv(process.env)
  await (deps.encoders as StoreEncoderCatalog).refresh()
  return handleAnalysisBatch(event, deps, Number(process.env.MAX_RECEIVES ?? 3))
}
