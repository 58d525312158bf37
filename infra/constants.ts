/** @module Numbers the infrastructure and the code must agree on (receive counts, timeouts, sizes), in one place. */

/** The deployment's region (sst.config.ts sets the provider from the same variable). */
export const REGION = process.env.AWS_REGION ?? 'us-east-1'

/** Encode jobs: receives before SQS moves a message to the DLQ; the GPU worker's MAX_RECEIVES (it marks the dataset failed on the last). */
export const ENCODE_MAX_RECEIVES = 4
/** Analysis jobs: the same for the analysis queue and its Lambda. */
export const ANALYSIS_MAX_RECEIVES = 3
/** The GPU worker holds a message for 300 s and extends it every 60 s while it works (gpu-worker/src/main.ts). */
export const ENCODE_VISIBILITY_SECONDS = 300
/** Lambda needs the queue's visibility timeout to be at least the function timeout (AWS recommends 6x). */
export const ANALYSIS_LAMBDA_TIMEOUT_SECONDS = 900
export const ANALYSIS_VISIBILITY_SECONDS = 6 * ANALYSIS_LAMBDA_TIMEOUT_SECONDS
/** DLQs keep failed messages for inspection and redrive: 14 days, the SQS maximum. */
export const DLQ_RETENTION_SECONDS = 14 * 24 * 3600

/** GPU fleet: one task per instance (each asks for the instance's one GPU). */
export const GPU_INSTANCE_TYPE = 'g5.xlarge'
export const GPU_MAX_INSTANCES = 8
/** Scale-out steps on visible encode messages, and the idle time before the fleet goes back to zero. */
export const SCALE_OUT_STEPS = [
  { atLeast: 1, add: 1 },
  { atLeast: 20, add: 2 },
  { atLeast: 100, add: 4 }
]
export const SCALE_IN_IDLE_MINUTES = 15

/** The store's key prefixes, as shared/src/store/layout.ts and friends write them ({tenant} never starts with '_'). */
export const STORE_PREFIXES = {
  datasets: '*/datasets/*',
  tombstones: '*/tombstones/*',
  analyses: '*/analyses/*',
  idempotency: '*/idempotency/*',
  tenantEncoders: '*/encoders/*',
  apiKeys: '_auth/api-keys/*',
  encoders: '_encoders/*',
  labelEmbeddings: '_encoders/*/label-embeddings/*'
} as const
