/**
 * @module The API as an AWS Lambda (behind a Function URL or API Gateway HTTP API): the same Hono app over S3, SQS,
 * API keys in S3 and the encoder catalog the GPU worker publishes to S3. Cloud mode: keys required.
 * Environment: BUCKET, QUEUE_URL, optional ANALYSIS_QUEUE_URL, AWS_REGION (set by Lambda), RATE_LIMIT_PER_SECOND /
 * RATE_LIMIT_BURST, EMBEDDINGS_* and LLM_* as for the local server.
 */
import { handle } from 'hono/aws-lambda'
import type { S3Client } from '@aws-sdk/client-s3'
import type { SQSClient } from '@aws-sdk/client-sqs'
import { awsClientsFromEnv, requiredEnv } from '@latentbase/shared/aws/clients'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { createApp, type App } from './app.ts'

export interface LambdaAppOptions {
  env: Record<string, string | undefined>
  s3?: S3Client
  sqs?: SQSClient
}

export function buildLambdaApp(o: LambdaAppOptions): { app: App; catalog: StoreEncoderCatalog } {
  const need = requiredEnv(o.env, 'the API Lambda needs BUCKET and QUEUE_URL')
  const { s3, sqs } = awsClientsFromEnv(o.env, o)
  const objects = new S3ObjectStore({ client: s3, bucket: need('BUCKET') })
  const catalog = new StoreEncoderCatalog(objects)
  const perSecond = Number(o.env.RATE_LIMIT_PER_SECOND ?? 0)
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue: new SqsQueue<JobMessage>({ client: sqs, queueUrl: need('QUEUE_URL') }),
    ...(o.env.ANALYSIS_QUEUE_URL
      ? { analysisQueue: new SqsQueue<AnalysisQueueMessage>({ client: sqs, queueUrl: o.env.ANALYSIS_QUEUE_URL }) }
      : {}),
    encoders: catalog,
    mode: 'cloud',
    apiKeys: new ApiKeyStore(objects),
    tenantOf: () => {
      throw new Error('cloud mode resolves tenants from API keys only')
    },
    // A rate limit is per instance here (each Lambda instance has its own buckets): a guard against floods, not a quota.
    ...(perSecond > 0 ? { rateLimit: { perSecond, burst: Number(o.env.RATE_LIMIT_BURST ?? perSecond * 2) } } : {}),
    embedder: embedderFromEnv(o.env),
    env: o.env
  })
  return { app, catalog }
}

let built: { app: App; catalog: StoreEncoderCatalog; handler: ReturnType<typeof handle> } | undefined

/** The Lambda entry (`api/src/lambda.handler`): one app per instance, reused across invocations. */
export const handler: ReturnType<typeof handle> = async (event, context) => {
  if (!built) {
    const { app, catalog } = buildLambdaApp({ env: process.env })
    built = { app, catalog, handler: handle(app) }
  }
  await built.catalog.refresh()
  return built.handler(event, context)
}
