/** @module The store bucket and the two job queues, each with its dead-letter queue (SST components). */
import {
  ANALYSIS_MAX_RECEIVES,
  ANALYSIS_VISIBILITY_SECONDS,
  DLQ_RETENTION_SECONDS,
  ENCODE_MAX_RECEIVES,
  ENCODE_VISIBILITY_SECONDS
} from './constants.ts'

export function storage() {
  // Private by default; versioning lets an operator recover from a bad write (readers only trust what manifest.json lists).
  const bucket = new sst.aws.Bucket('Store', { versioning: true })

  const encodeDlq = new sst.aws.Queue('EncodeDlq', {
    transform: { queue: { messageRetentionSeconds: DLQ_RETENTION_SECONDS } }
  })
  const encode = new sst.aws.Queue('Encode', {
    visibilityTimeout: `${ENCODE_VISIBILITY_SECONDS} seconds`,
    // After ENCODE_MAX_RECEIVES receives SQS moves the message to the DLQ; the worker marks the dataset failed on the last one.
    dlq: { queue: encodeDlq.arn, retry: ENCODE_MAX_RECEIVES }
  })

  const analysisDlq = new sst.aws.Queue('AnalysisDlq', {
    transform: { queue: { messageRetentionSeconds: DLQ_RETENTION_SECONDS } }
  })
  const analysis = new sst.aws.Queue('Analysis', {
    visibilityTimeout: `${ANALYSIS_VISIBILITY_SECONDS} seconds`,
    dlq: { queue: analysisDlq.arn, retry: ANALYSIS_MAX_RECEIVES }
  })

  return { bucket, encode, encodeDlq, analysis, analysisDlq }
}
export type Storage = ReturnType<typeof storage>
