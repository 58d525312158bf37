/** @module The S3 and SQS clients of an AWS entry point (API Lambda, analysis Lambda and worker, GPU worker), built from its environment. */
import { S3Client } from '@aws-sdk/client-s3'
import { SQSClient } from '@aws-sdk/client-sqs'

export interface AwsClients {
  s3: S3Client
  sqs: SQSClient
}

/**
 * AWS_REGION (default us-east-1); S3_ENDPOINT and SQS_ENDPOINT point at a local stand-in (MinIO, fauxqs), with
 * path-style S3 URLs since such servers have no per-bucket host names. Clients given in `given` are kept (tests).
 */
export function awsClientsFromEnv(
  env: Record<string, string | undefined>,
  given: Partial<AwsClients> = {}
): AwsClients {
  const region = env.AWS_REGION ?? 'us-east-1'
  return {
    s3:
      given.s3 ??
      new S3Client({ region, ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, forcePathStyle: true } : {}) }),
    sqs: given.sqs ?? new SQSClient({ region, ...(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {}) })
  }
}

/** A reader of required settings: a missing one throws `NAME is not set: <needs>`. */
export function requiredEnv(env: Record<string, string | undefined>, needs: string): (name: string) => string {
  return name => {
    const v = env[name]
    if (!v) throw new Error(`${name} is not set: ${needs}`)
    return v
  }
}
