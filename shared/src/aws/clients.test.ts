/** @module Tests of the AWS clients built from an entry point's environment: region, local endpoints, given clients kept, required settings named. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { S3Client } from '@aws-sdk/client-s3'
import { awsClientsFromEnv, requiredEnv } from './clients.ts'

test('region and local endpoints come from the environment; S3 goes path-style only with an endpoint', async () => {
  const local = awsClientsFromEnv({
    AWS_REGION: 'eu-west-3',
    S3_ENDPOINT: 'http://127.0.0.1:9000',
    SQS_ENDPOINT: 'http://127.0.0.1:9324'
  })
  assert.equal(await local.s3.config.region(), 'eu-west-3')
  assert.equal(await local.sqs.config.region(), 'eu-west-3')
  const s3 = await local.s3.config.endpoint!()
  assert.equal(`${s3.protocol}//${s3.hostname}:${s3.port}`, 'http://127.0.0.1:9000')
  const sqs = await local.sqs.config.endpoint!()
  assert.equal(`${sqs.hostname}:${sqs.port}`, '127.0.0.1:9324')
  assert.equal(local.s3.config.forcePathStyle, true)

  const cloud = awsClientsFromEnv({})
  assert.equal(await cloud.s3.config.region(), 'us-east-1')
  assert.equal(cloud.s3.config.endpoint, undefined)
  assert.notEqual(cloud.s3.config.forcePathStyle, true)
})

test('given clients are kept; a missing required setting names itself and what needs it', () => {
  const s3 = new S3Client({ region: 'ap-south-1' })
  assert.equal(awsClientsFromEnv({}, { s3 }).s3, s3)
  const need = requiredEnv({ BUCKET: 'b' }, 'the analysis worker needs ANALYSIS_QUEUE_URL and BUCKET')
  assert.equal(need('BUCKET'), 'b')
  assert.throws(
    () => need('ANALYSIS_QUEUE_URL'),
    /^Error: ANALYSIS_QUEUE_URL is not set: the analysis worker needs ANALYSIS_QUEUE_URL and BUCKET$/
  )
})
