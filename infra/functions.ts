/** @module The API Lambda (Hono over hono/aws-lambda, public URL) and the analysis consumer Lambda on the analysis queue. */
import { ANALYSIS_LAMBDA_TIMEOUT_SECONDS, ANALYSIS_MAX_RECEIVES } from './constants.ts'
import { analysisStatements, apiStatements } from './iam.ts'
import type { Storage } from './storage.ts'

export function functions(s: Storage) {
  const shared = {
    runtime: 'nodejs22.x',
    architecture: 'arm64',
    // IAM comes from `permissions` only (no `link`, which would grant the whole bucket and queues).
    environment: { BUCKET: s.bucket.name },
    // The offline embedder reads its lexicon from shared/assets/ under the working directory (/var/task) once bundled.
    copyFiles: [{ from: 'shared/assets/offline-lexicon.txt' }]
  }

  const api = new sst.aws.Function('Api', {
    ...shared,
    handler: 'api/src/lambda.handler',
    memory: '1024 MB',
    timeout: '30 seconds',
    url: true,
    environment: {
      ...shared.environment,
      QUEUE_URL: s.encode.url,
      ANALYSIS_QUEUE_URL: s.analysis.url,
      RATE_LIMIT_PER_SECOND: '20',
      RATE_LIMIT_BURST: '40'
    },
    permissions: apiStatements($interpolate, {
      bucketArn: s.bucket.arn,
      encodeQueueArn: s.encode.arn,
      analysisQueueArn: s.analysis.arn
    })
  })

  const analysisConsumer = new sst.aws.Function('AnalysisConsumer', {
    ...shared,
    handler: 'api/src/analysis-lambda.handler',
    memory: '3008 MB',
    timeout: `${ANALYSIS_LAMBDA_TIMEOUT_SECONDS} seconds`,
    environment: {
      ...shared.environment,
      ANALYSIS_QUEUE_URL: s.analysis.url,
      MAX_RECEIVES: String(ANALYSIS_MAX_RECEIVES)
    },
    permissions: analysisStatements($interpolate, { bucketArn: s.bucket.arn, analysisQueueArn: s.analysis.arn })
  })
  // One job per invocation: an analysis can take minutes, and a failure should retry only itself.
  s.analysis.subscribe(analysisConsumer.arn, { batch: { size: 1, partialResponses: true } })

  return { api, analysisConsumer }
}
