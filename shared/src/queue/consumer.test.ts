/** @module Tests for the consumer loop, on the embedded queue: concurrency, heartbeats, retry backoff, graceful stop. */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { runConsumer } from './consumer.ts'
import { EmbeddedQueue } from './embedded-queue.ts'
import type { TestJob } from './job-queue.contract.ts'

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

describe('runConsumer', () => {
  let dir: string
  let queue: EmbeddedQueue<TestJob>
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-consumer-'))
    queue = new EmbeddedQueue<TestJob>(dir, { pollIntervalMs: 50 })
  })
  afterEach(async () => {
    await queue.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('handles every message, at most `concurrency` at a time, and acks them', async () => {
    for (let n = 0; n < 9; n++) await queue.send({ n, tag: 'work' })
    const controller = new AbortController()
    const done = new Set<number>()
    let running = 0
    let peak = 0
    const consumer = runConsumer(
      queue,
      async m => {
        running++
        peak = Math.max(peak, running)
        await sleep(60)
        running--
        done.add(m.body.n)
        if (done.size === 9) controller.abort()
      },
      { concurrency: 3, visibilitySeconds: 10, heartbeatSeconds: 5, waitSeconds: 1, signal: controller.signal }
    )
    await consumer
    assert.equal(done.size, 9)
    assert.equal(peak, 3)
    assert.deepEqual(await queue.depth(), { waiting: 0, inFlight: 0 })
  })

  it('renews the lease while a slow handler runs, so nobody else receives the message', async () => {
    await queue.send({ n: 1, tag: 'slow' })
    const other = new EmbeddedQueue<TestJob>(dir)
    const controller = new AbortController()
    let calls = 0
    const stolen: string[] = []
    const consumer = runConsumer(
      queue,
      async () => {
        calls++
        // Three times the visibility: without the heartbeat the other handle would get it.
        const until = Date.now() + 2400
        while (Date.now() < until) {
          for (const m of await other.receive({ waitSeconds: 0.3 })) stolen.push(m.id)
        }
        controller.abort()
      },
      { visibilitySeconds: 0.8, heartbeatSeconds: 0.25, waitSeconds: 1, signal: controller.signal }
    )
    await consumer
    await other.close()
    assert.equal(calls, 1)
    assert.deepEqual(stolen, [])
    assert.deepEqual(await queue.depth(), { waiting: 0, inFlight: 0 })
  })

  it('after a handler throws, the message comes back after the backoff and is acked once it succeeds', async () => {
    const id = await queue.send({ n: 1, tag: 'flaky' })
    const controller = new AbortController()
    const seen: Array<{ receiveCount: number; at: number }> = []
    const errors: unknown[] = []
    const consumer = runConsumer(
      queue,
      async m => {
        seen.push({ receiveCount: m.receiveCount, at: Date.now() })
        if (m.receiveCount === 1) throw new Error('transient')
        controller.abort()
      },
      {
        visibilitySeconds: 30,
        heartbeatSeconds: 10,
        waitSeconds: 1,
        retryDelaySeconds: () => 0.3,
        signal: controller.signal,
        onError: (err, m) => errors.push([err, m?.id])
      }
    )
    await consumer
    assert.deepEqual(
      seen.map(s => s.receiveCount),
      [1, 2]
    )
    const gap = seen[1].at - seen[0].at
    assert.ok(gap >= 280 && gap < 5000, `retried after ${gap} ms, not after the 30 s visibility`)
    assert.equal(errors.length, 1)
    assert.deepEqual(errors[0], [new Error('transient'), id])
    assert.deepEqual(await queue.depth(), { waiting: 0, inFlight: 0 })
  })

  it('stops on abort only after in-flight work is finished and acked, and starts nothing new', async () => {
    await queue.send({ n: 1, tag: 'in-flight' })
    const controller = new AbortController()
    let started = 0
    let finished = 0
    const consumer = runConsumer(
      queue,
      async () => {
        started++
        await sleep(500)
        finished++
      },
      { visibilitySeconds: 10, heartbeatSeconds: 5, waitSeconds: 5, signal: controller.signal }
    )
    while (started === 0) await sleep(10)
    controller.abort()
    await queue.send({ n: 2, tag: 'after stop' })
    const t0 = Date.now()
    await consumer
    assert.equal(finished, 1, 'the running handler finished before runConsumer resolved')
    assert.equal(started, 1, 'nothing new after the abort')
    assert.ok(Date.now() - t0 < 2000, 'the long poll did not hold up the stop')
    assert.deepEqual(await queue.depth(), { waiting: 1, inFlight: 0 }, 'first acked, second still waiting')
  })

  it('refuses a heartbeat that is not shorter than the visibility', async () => {
    await assert.rejects(
      runConsumer(queue, async () => {}, { visibilitySeconds: 10, heartbeatSeconds: 10 }),
      RangeError
    )
  })
})
