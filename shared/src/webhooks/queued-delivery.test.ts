/** @module Tests of one queued webhook attempt against a loopback receiver: waits re-queued in hops, failures re-queued on the schedule, unknown targets dropped. */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import type { WebhookJob } from '../contract/job.ts'
import type { SendOptions } from '../queue/job-queue.ts'
import { generateWebhookSecret } from './sign.ts'
import { deliverQueuedWebhook, MAX_QUEUE_DELAY_SECONDS } from './queued-delivery.ts'

let server: Server
let base: string
const hits: string[] = []

before(async () => {
  // /ok answers 200, /down 503 (retry), /gone 410 (the receiver asks us to stop).
  server = createServer((req, res) => {
    hits.push(req.url ?? '')
    req.resume()
    req.on('end', () => {
      res.statusCode = req.url === '/ok' ? 200 : req.url === '/gone' ? 410 : 503
      res.end()
    })
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => new Promise<void>(r => server.close(() => r())))

/** The queue's side of the contract: what was sent back, with which delay. */
function recordingQueue() {
  const sent: Array<{ body: WebhookJob; options?: SendOptions }> = []
  return {
    sent,
    send: async (body: WebhookJob, options?: SendOptions) => {
      sent.push({ body, options })
      return 'id'
    }
  }
}

const job = (over: Partial<WebhookJob> = {}): WebhookJob => ({
  kind: 'webhook',
  tenant: 't',
  datasetId: 'ds_1',
  event: 'dataset.ready',
  messageId: 'msg_1',
  body: '{"x":1}',
  timestamp: Math.floor(Date.now() / 1000),
  attempt: 0,
  ...over
})

test('a delivered event is logged and nothing is re-queued', async () => {
  const queue = recordingQueue(),
    lines: string[] = []
  await deliverQueuedWebhook(
    { queue, log: l => lines.push(l) },
    job(),
    async () => ({ url: `${base}/ok`, secret: generateWebhookSecret() }),
    'dropped'
  )
  assert.deepEqual(queue.sent, [])
  assert.deepEqual(lines, ['dataset.ready delivered (200)'])
})

test('a failed attempt is re-queued as the next attempt, not before the schedule says', async () => {
  const queue = recordingQueue(),
    lines: string[] = []
  const before = Math.floor(Date.now() / 1000)
  await deliverQueuedWebhook(
    { queue, log: l => lines.push(l) },
    job({ attempt: 1 }),
    async () => ({ url: `${base}/down`, secret: generateWebhookSecret() }),
    'dropped'
  )
  assert.equal(queue.sent.length, 1)
  const { body, options } = queue.sent[0]
  assert.equal(body.attempt, 2)
  // Attempt 2 waits 300 s (Standard Webhooks schedule): under the queue's cap, so one hop.
  assert.equal(options?.delaySeconds, 300)
  assert.ok(body.notBefore! >= before + 300 && body.notBefore! <= Math.floor(Date.now() / 1000) + 300)
  assert.match(lines[0], /not delivered \(.*503\); retry 2 in 300 s/)
})

test('a job not yet due goes back on the queue in hops of at most the queue delay cap, without a delivery', async () => {
  const queue = recordingQueue()
  const due = Math.floor(Date.now() / 1000) + 7200
  const hitsBefore = hits.length
  let looked = false
  await deliverQueuedWebhook(
    { queue, log: () => {} },
    job({ attempt: 4, notBefore: due }),
    async () => {
      looked = true
      return null
    },
    'dropped'
  )
  assert.equal(hits.length, hitsBefore)
  assert.equal(looked, false, 'the target is looked up only when the job is due')
  assert.equal(queue.sent.length, 1)
  assert.equal(queue.sent[0].body.notBefore, due)
  assert.equal(queue.sent[0].options?.delaySeconds, MAX_QUEUE_DELAY_SECONDS)
})

test('an unknown target is dropped with the reason; 410 Gone is given up', async () => {
  const queue = recordingQueue(),
    lines: string[] = []
  await deliverQueuedWebhook({ queue, log: l => lines.push(l) }, job(), async () => null, 'dataset deleted: dropped')
  await deliverQueuedWebhook(
    { queue, log: l => lines.push(l) },
    job(),
    async () => ({ url: `${base}/gone`, secret: generateWebhookSecret() }),
    'dropped'
  )
  assert.deepEqual(queue.sent, [])
  assert.equal(lines[0], 'dataset deleted: dropped')
  assert.match(lines[1], /not delivered, giving up/)
})
