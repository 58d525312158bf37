/** @module Tests for the SQS JobQueue against fauxqs (the SQS wire protocol, served inside the test process). */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient
} from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { z } from 'zod'
import { jobQueueContract, type TestJob } from './job-queue.contract.ts'
import { InvalidMessageError, SqsQueue } from './sqs-queue.ts'

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))
const TestJobSchema = z.object({ n: z.number().int(), tag: z.string() })

let server: Awaited<ReturnType<typeof startFauxqs>>
let client: SQSClient

before(async () => {
  server = await startFauxqs({ port: 0, logger: false })
  client = new SQSClient({
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
})
after(async () => {
  client?.destroy()
  await server?.stop()
})

async function createQueue(attributes: Record<string, string> = {}) {
  const out = await client.send(new CreateQueueCommand({ QueueName: `q-${randomUUID()}`, Attributes: attributes }))
  return out.QueueUrl!
}

async function queueArn(queueUrl: string) {
  const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  return out.Attributes!.QueueArn!
}

jobQueueContract('SqsQueue (fauxqs)', async () => {
  const queueUrl = await createQueue({ VisibilityTimeout: '2' })
  return {
    open: async () => new SqsQueue<TestJob>({ client, queueUrl, schema: TestJobSchema }),
    cleanup: async () => {
      await client.send(new DeleteQueueCommand({ QueueUrl: queueUrl }))
    }
  }
})

describe('SqsQueue', () => {
  it('a redrive policy moves a message to the DLQ after maxReceiveCount receives', async () => {
    const dlqUrl = await createQueue()
    const queueUrl = await createQueue({
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(dlqUrl), maxReceiveCount: '2' })
    })
    const q = new SqsQueue<TestJob>({ client, queueUrl, schema: TestJobSchema })
    const dlq = new SqsQueue<TestJob>({ client, queueUrl: dlqUrl, schema: TestJobSchema })
    const id = await q.send({ n: 1, tag: 'poison' })
    for (let i = 1; i <= 2; i++) {
      const [m] = await q.receive({ waitSeconds: 3, visibilitySeconds: 1 })
      assert.equal(m?.id, id)
      assert.equal(m.receiveCount, i)
    }
    await sleep(1100)
    assert.deepEqual(await q.receive({ waitSeconds: 1 }), [], 'not delivered a third time')
    const [dead] = await dlq.receive({ waitSeconds: 2 })
    assert.deepEqual(dead?.body, { n: 1, tag: 'poison' })
    await dlq.ack(dead)
    assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 0 })
  })

  it('surfaces invalid bodies through onInvalid, hands out the valid ones, and leaves the bad one for the DLQ', async () => {
    const queueUrl = await createQueue()
    const invalid: InvalidMessageError[] = []
    const q = new SqsQueue<TestJob>({ client, queueUrl, schema: TestJobSchema, onInvalid: e => void invalid.push(e) })
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'not json' }))
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ n: 'one', tag: 1 }) }))
    const goodId = await q.send({ n: 3, tag: 'fine' })
    const got = []
    for (let i = 0; i < 5 && got.length === 0; i++)
      got.push(...(await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 })))
    for (let i = 0; i < 5 && invalid.length < 2; i++)
      await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 })
    assert.deepEqual(
      got.map(m => m.id),
      [goodId]
    )
    assert.equal(invalid.length, 2)
    assert.ok(invalid.every(e => e instanceof InvalidMessageError && e.receiveCount === 1))
    const notJson = invalid.find(e => e.rawBody === 'not json')
    assert.match(notJson!.message, /not JSON/)
    const badShape = invalid.find(e => e.rawBody !== 'not json')
    assert.match(badShape!.message, /n: .*number/)
    assert.match(badShape!.message, /tag: /)
    assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 3 }, 'the invalid ones stay in the queue, in flight')
  })

  it('refuses a delay SQS cannot express', async () => {
    const q = new SqsQueue<TestJob>({ client, queueUrl: await createQueue() })
    await assert.rejects(q.send({ n: 1, tag: 'x' }, { delaySeconds: 3600 }), RangeError)
  })

  it('an aborted long poll returns nothing at once', async () => {
    const q = new SqsQueue<TestJob>({ client, queueUrl: await createQueue() })
    const controller = new AbortController()
    const t0 = Date.now()
    const pending = q.receive({ waitSeconds: 10, signal: controller.signal })
    await sleep(100)
    controller.abort()
    assert.deepEqual(await pending, [])
    assert.ok(Date.now() - t0 < 2000)
  })
})
