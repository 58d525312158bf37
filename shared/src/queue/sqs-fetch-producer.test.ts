/** @module The fetch + SigV4 SQS producer (for the Worker) delivers messages the SDK-based consumer reads. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { SqsQueue } from './sqs-queue.ts'
import { SqsFetchProducer } from './sqs-fetch-producer.ts'
import { ProducerOnlyQueueError } from './cf-queue-producer.ts'

let server: Awaited<ReturnType<typeof startFauxqs>>
let sqs: SQSClient
let queueUrl: string

before(async () => {
  server = await startFauxqs({ port: 0, logger: false })
  sqs = new SQSClient({
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'fetch-producer' }))).QueueUrl!
})
after(async () => {
  sqs.destroy()
  await server.stop()
})

test('send delivers a JSON body; a delayed one arrives later; consumer-side calls are refused', async () => {
  const producer = new SqsFetchProducer<{ kind: string; n: number }>({
    queueUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    endpoint: server.address
  })
  const id = await producer.send({ kind: 'encode', n: 1 })
  assert.ok(id.length > 0)
  await producer.send({ kind: 'encode', n: 2 }, { delaySeconds: 2 })
  const consumer = new SqsQueue<{ kind: string; n: number }>({ client: sqs, queueUrl })
  const first = await consumer.receive({ max: 10, waitSeconds: 1 })
  assert.deepEqual(
    first.map(m => m.body),
    [{ kind: 'encode', n: 1 }]
  )
  assert.equal(first[0].id, id)
  await consumer.ack(first[0])
  const later = await consumer.receive({ max: 10, waitSeconds: 4 })
  assert.deepEqual(
    later.map(m => m.body),
    [{ kind: 'encode', n: 2 }]
  )
  await assert.rejects(producer.receive(), ProducerOnlyQueueError)
  await assert.rejects(producer.send({ kind: 'x', n: 0 }, { delaySeconds: 901 }), RangeError)
})

test('an SQS error is reported with its status', async () => {
  const producer = new SqsFetchProducer({
    queueUrl: queueUrl + '-missing',
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    endpoint: server.address
  })
  await assert.rejects(producer.send({}), /SQS SendMessage failed: HTTP 4\d\d/)
})
