/** @module The behaviour every JobQueue must show, as a test suite each implementation runs with its own factory. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { JobQueue, QueueMessage } from './job-queue.ts'

export interface TestJob {
  n: number
  tag: string
}

export interface QueueHarness {
  /** Another handle on the same underlying queue (a second consumer, or the same queue after a restart). */
  open(): Promise<JobQueue<TestJob>>
  /** Removes what the harness made; every handle it opened is closed by the suite first. */
  cleanup?(): Promise<void>
}

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

/** Registers the suite; `makeHarness` gives a fresh, empty queue for each test. */
export function jobQueueContract(name: string, makeHarness: () => Promise<QueueHarness>) {
  describe(`JobQueue contract: ${name}`, () => {
    async function withQueue(fn: (open: () => Promise<JobQueue<TestJob>>) => Promise<void>) {
      const harness = await makeHarness()
      const opened: JobQueue<TestJob>[] = []
      const open = async () => {
        const q = await harness.open()
        opened.push(q)
        return q
      }
      try {
        await fn(open)
      } finally {
        for (const q of opened) await q.close()
        await harness.cleanup?.()
      }
    }

    it('sends, receives and acknowledges; an acked message is gone', () =>
      withQueue(async open => {
        const q = await open()
        const id = await q.send({ n: 1, tag: 'hello' })
        assert.equal(typeof id, 'string')
        const [m, ...rest] = await q.receive({ waitSeconds: 2, visibilitySeconds: 1 })
        assert.equal(rest.length, 0)
        assert.equal(m.id, id)
        assert.deepEqual(m.body, { n: 1, tag: 'hello' })
        assert.equal(m.receiveCount, 1)
        assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 1 })
        await q.ack(m)
        assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 0 })
        await sleep(1300) // past the visibility it was received with: still never comes back
        assert.deepEqual(await q.receive({ waitSeconds: 0 }), [])
      }))

    it('redelivers an unacknowledged message after its visibility, with receiveCount 2, and not before', () =>
      withQueue(async open => {
        const a = await open()
        const b = await open()
        const id = await a.send({ n: 2, tag: 'retry' })
        const [first] = await a.receive({ waitSeconds: 2, visibilitySeconds: 1 })
        assert.equal(first.receiveCount, 1)
        // While the lease holds, nobody else gets it.
        assert.deepEqual(await b.receive({ waitSeconds: 0 }), [])
        const t0 = Date.now()
        const [second] = await b.receive({ waitSeconds: 4, visibilitySeconds: 5 })
        assert.ok(second, 'redelivered')
        assert.equal(second.id, id)
        assert.equal(second.receiveCount, 2)
        assert.deepEqual(second.body, { n: 2, tag: 'retry' })
        assert.ok(Date.now() - t0 < 3500, 'redelivered soon after the visibility ran out')
        await b.ack(second)
        assert.deepEqual(await b.depth(), { waiting: 0, inFlight: 0 })
      }))

    it('extend keeps a message hidden past its first visibility', () =>
      withQueue(async open => {
        const q = await open()
        await q.send({ n: 3, tag: 'long' })
        const [m] = await q.receive({ waitSeconds: 2, visibilitySeconds: 1 })
        await q.extend(m, 4)
        assert.deepEqual(await q.receive({ waitSeconds: 2 }), [], 'hidden for 2 s after a 1 s visibility')
        assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 1 })
        await q.ack(m)
      }))

    it('extend(message, 0) makes it visible again at once', () =>
      withQueue(async open => {
        const q = await open()
        await q.send({ n: 4, tag: 'release' })
        const [m] = await q.receive({ waitSeconds: 2, visibilitySeconds: 30 })
        await q.extend(m, 0)
        const [again] = await q.receive({ waitSeconds: 2, visibilitySeconds: 30 })
        assert.equal(again?.id, m.id)
        assert.equal(again.receiveCount, 2)
        await q.ack(again)
      }))

    it('honours delaySeconds', () =>
      withQueue(async open => {
        const q = await open()
        const t0 = Date.now()
        await q.send({ n: 5, tag: 'later' }, { delaySeconds: 1 })
        assert.deepEqual(await q.receive({ waitSeconds: 0 }), [])
        assert.equal((await q.depth()).waiting, 1, 'a delayed message counts as waiting')
        const [m] = await q.receive({ waitSeconds: 4 })
        assert.ok(m, 'delivered after the delay')
        assert.ok(Date.now() - t0 >= 950, `not before the delay (${Date.now() - t0} ms)`)
        await q.ack(m)
      }))

    it('a long poll returns promptly when a message is sent', () =>
      withQueue(async open => {
        const consumer = await open()
        const producer = await open()
        const t0 = Date.now()
        const pending = consumer.receive({ waitSeconds: 10, visibilitySeconds: 5 })
        await sleep(150)
        await producer.send({ n: 6, tag: 'wake' })
        const [m] = await pending
        const elapsed = Date.now() - t0
        assert.equal(m?.body.tag, 'wake')
        assert.ok(elapsed < 2000, `returned after ${elapsed} ms`)
        await consumer.ack(m)
      }))

    it('a long poll on an empty queue waits about waitSeconds and returns nothing', () =>
      withQueue(async open => {
        const q = await open()
        const t0 = Date.now()
        assert.deepEqual(await q.receive({ waitSeconds: 1 }), [])
        const elapsed = Date.now() - t0
        assert.ok(elapsed >= 900 && elapsed < 3000, `waited ${elapsed} ms`)
      }))

    it('two concurrent consumers: every message delivered, none twice while leases hold', () =>
      withQueue(async open => {
        const producer = await open()
        const consumers = [await open(), await open()]
        const total = 24
        const sent = new Set<string>()
        for (let n = 0; n < total; n++) sent.add(await producer.send({ n, tag: 'bulk' }))
        const seen = new Map<string, number>()
        const perConsumer = [0, 0]
        let acked = 0
        await Promise.all(
          consumers.map(async (q, c) => {
            const deadline = Date.now() + 20_000
            while (acked < total && Date.now() < deadline) {
              const batch: QueueMessage<TestJob>[] = await q.receive({ max: 5, waitSeconds: 1, visibilitySeconds: 30 })
              for (const m of batch) {
                seen.set(m.id, (seen.get(m.id) ?? 0) + 1)
                perConsumer[c]++
                await sleep(5) // interleave the two consumers
                await q.ack(m)
                acked++
              }
            }
          })
        )
        assert.equal(seen.size, total, 'no message lost')
        assert.deepEqual(new Set(seen.keys()), sent)
        for (const [id, count] of seen)
          assert.equal(count, 1, `message ${id} delivered ${count} times within its lease`)
        assert.deepEqual(await producer.depth(), { waiting: 0, inFlight: 0 })
      }))

    it('refuses to ack a message object it did not hand out', () =>
      withQueue(async open => {
        const q = await open()
        const id = await q.send({ n: 7, tag: 'forged' })
        await assert.rejects(q.ack({ id, body: { n: 7, tag: 'forged' }, receiveCount: 1 }))
      }))
  })
}
