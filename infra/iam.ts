/**
 * @module Least-privilege IAM statements for each role, as plain data (no SST or Pulumi globals), so the harness can
 * check them and sst.config.ts can hand them to SST functions (`permissions`) and Pulumi policies alike.
 */
import { STORE_PREFIXES as P } from './constants.ts'

/** An ARN or a not-yet-known value (a Pulumi Output in sst.config.ts, a token string in the harness). */
export type Arn = unknown

export interface Statement {
  actions: string[]
  resources: Arn[]
  /** IAM conditions, e.g. limiting ListBucket to prefixes. */
  conditions?: Array<{ test: string; variable: string; values: string[] }>
}

type Interp = (strings: TemplateStringsArray, ...values: unknown[]) => Arn

const objects = (interp: Interp, bucketArn: Arn, ...prefixes: string[]) => prefixes.map(p => interp`${bucketArn}/${p}`)
const listUnder = (bucketArn: Arn, ...prefixes: string[]): Statement => ({
  actions: ['s3:ListBucket'],
  resources: [bucketArn],
  conditions: [
    {
      test: 'StringLike',
      variable: 's3:prefix',
      values: prefixes.map(p => p.replace(/\*$/, '')).flatMap(p => [p, `${p}*`])
    }
  ]
})

/**
 * The API (Lambda): reads and writes datasets, tombstones, analysis jobs and idempotency records; reads API keys and the
 * published encoder catalog (never writes them: keys are made by `npm run keys`, the catalog by the GPU worker);
 * caches label embeddings; sends to both queues and reads the encode queue's depth for /health.
 */
export function apiStatements(
  interp: Interp,
  r: { bucketArn: Arn; encodeQueueArn: Arn; analysisQueueArn: Arn }
): Statement[] {
  return [
    {
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: objects(
        interp,
        r.bucketArn,
        P.datasets,
        P.tombstones,
        P.analyses,
        P.idempotency,
        P.tenantEncoders,
        P.labelEmbeddings
      )
    },
    { actions: ['s3:GetObject'], resources: objects(interp, r.bucketArn, P.apiKeys, P.encoders) },
    listUnder(r.bucketArn, '*/datasets/', '*/tombstones/', '*/analyses/', '*/encoders/'),
    { actions: ['sqs:SendMessage'], resources: [r.encodeQueueArn, r.analysisQueueArn] },
    { actions: ['sqs:GetQueueAttributes'], resources: [r.encodeQueueArn] }
  ]
}

/** The GPU worker (ECS task role): writes datasets, reads tombstones, publishes the encoder catalog; consumes the encode queue (and re-queues webhook retries on it). */
export function gpuWorkerStatements(interp: Interp, r: { bucketArn: Arn; encodeQueueArn: Arn }): Statement[] {
  return [
    {
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: objects(interp, r.bucketArn, P.datasets)
    },
    { actions: ['s3:GetObject'], resources: objects(interp, r.bucketArn, P.tombstones) },
    { actions: ['s3:GetObject', 's3:PutObject'], resources: objects(interp, r.bucketArn, P.encoders) },
    listUnder(r.bucketArn, '*/datasets/', '*/tombstones/'),
    {
      actions: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
        'sqs:SendMessage'
      ],
      resources: [r.encodeQueueArn]
    }
  ]
}

/** The analysis consumer (Lambda): reads datasets and the catalog, writes analysis jobs and the label-embedding cache; consumes the analysis queue and re-queues webhook retries on it. */
export function analysisStatements(interp: Interp, r: { bucketArn: Arn; analysisQueueArn: Arn }): Statement[] {
  return [
    {
      actions: ['s3:GetObject'],
      resources: objects(interp, r.bucketArn, P.datasets, P.tombstones, P.encoders, P.tenantEncoders)
    },
    {
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: objects(interp, r.bucketArn, P.analyses, P.labelEmbeddings)
    },
    listUnder(r.bucketArn, '*/datasets/', '*/analyses/', '*/encoders/'),
    {
      actions: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
        'sqs:SendMessage'
      ],
      resources: [r.analysisQueueArn]
    }
  ]
}

/** As an IAM policy document (for Pulumi aws.iam.RolePolicy), given a JSON stringifier that understands Outputs. */
export function policyDocument(statements: Statement[]) {
  return {
    Version: '2012-10-17',
    Statement: statements.map(s => ({
      Effect: 'Allow',
      Action: s.actions,
      Resource: s.resources,
      ...(s.conditions
        ? { Condition: Object.fromEntries(s.conditions.map(c => [c.test, { [c.variable]: c.values }])) }
        : {})
    }))
  }
}
