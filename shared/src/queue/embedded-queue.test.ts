/** @module Tests for the on-disk queue: the shared contract, restarts, dead letters, order, stale locks. */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { EmbeddedQueue, LeaseLostError } from './embedded-queue.ts'
import type { QueueMessage } from './job-queue.ts'
import { jobQueueContract, type TestJob } from './job-queue.contract.ts'

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))
const tempDir = () => mkdtemp(join(tmpdir(), 'lb-queue-'))

jobQueueContract('EmbeddedQueue', async () => {
  const dir = await tempDir()
  return {
    open: async () => new EmbeddedQueue<TestJob>(dir, { pollIntervalMs: 100 }),
    cleanup: () => rm(dir, { recursive: true, force: true })
  }
})

describe('EmbeddedQueue', () => {
  it('survives a restart: waiting messages stay, in-flight ones come back once their lease runs out', async () => {
    const dir = await tempDir()
    try {
      const before = new EmbeddedQueue<TestJob>(dir)
      const inFlightId = await before.send({ n: 1, tag: 'in-flight' })
      const [leased] = await before.receive({ visibilitySeconds: 1 })
      assert.equal(leased.id, inFlightId)
      const waitingId = await before.send({ n: 2, tag: 'waiting' })
      // The process "dies" here: nothing but the folder carries over.
      const after = new EmbeddedQueue<TestJob>(dir)
      assert.deepEqual(await after.depth(), { waiting: 1, inFlight: 1 })
      const [w] = await after.receive({ visibilitySeconds: 30 })
      assert.equal(w.id, waitingId)
      assert.equal(w.receiveCount, 1)
      assert.deepEqual(await after.receive(), [], 'the old lease still holds')
      const [again] = await after.receive({ waitSeconds: 3, visibilitySeconds: 30 })
      assert.equal(again?.id, inFlightId)
      assert.equal(again.receiveCount, 2)
      assert.deepEqual(again.body, { n: 1, tag: 'in-flight' })
      // The dead process's lease is gone: its late heartbeat must not steal the message back.
      await assert.rejects(before.extend(leased, 30), LeaseLostError)
      await after.ack(w)
      await after.ack(again)
      assert.deepEqual(await after.depth(), { waiting: 0, inFlight: 0 })
      assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp files left behind')
      assert.deepEqual(await readdir(join(dir, 'locks')), [], 'no locks left behind')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('dead-letters a message received more than maxReceives times, to dead/ and the callback', async () => {
    const dir = await tempDir()
    try {
      const calls: Array<{ message: QueueMessage<TestJob>; reason: string }> = []
      const q = new EmbeddedQueue<TestJob>(dir, {
        maxReceives: 2,
        deadLetter: (message, reason) => void calls.push({ message, reason })
      })
      const id = await q.send({ n: 9, tag: 'poison' })
      for (let i = 1; i <= 2; i++) {
        const [m] = await q.receive({ waitSeconds: 2, visibilitySeconds: 0.2 })
        assert.equal(m?.receiveCount, i)
      }
      await sleep(250)
      assert.deepEqual(await q.receive({ waitSeconds: 0.5 }), [], 'not delivered a third time')
      assert.equal(calls.length, 1)
      assert.equal(calls[0].message.id, id)
      assert.deepEqual(calls[0].message.body, { n: 9, tag: 'poison' })
      assert.match(calls[0].reason, /2 times/)
      assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 0 })
      assert.deepEqual(await readdir(join(dir, 'dead')), [`${id}.json`])
      const dead = await q.deadLetters()
      assert.equal(dead.length, 1)
      assert.equal(dead[0].id, id)
      assert.equal(dead[0].receiveCount, 2)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps a message whose deadLetter callback failed and tries again later', async () => {
    const dir = await tempDir()
    try {
      let attempts = 0
      const q = new EmbeddedQueue<TestJob>(dir, {
        maxReceives: 1,
        deadLetter: () => {
          attempts++
          if (attempts === 1) throw new Error('database down')
        }
      })
      await q.send({ n: 1, tag: 'poison' })
      await q.receive({ visibilitySeconds: 0.2 })
      await sleep(250)
      assert.deepEqual(await q.receive({ visibilitySeconds: 0.2 }), [])
      assert.equal(attempts, 1)
      assert.equal((await q.deadLetters()).length, 0, 'not moved while the callback failed')
      assert.deepEqual(await q.receive({ waitSeconds: 1, visibilitySeconds: 0.2 }), [])
      assert.equal(attempts, 2)
      assert.equal((await q.deadLetters()).length, 1)
      assert.deepEqual(await q.depth(), { waiting: 0, inFlight: 0 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('delivers in order of availability: send order, delayed messages when their time comes', async () => {
    const dir = await tempDir()
    try {
      const q = new EmbeddedQueue<TestJob>(dir)
      await q.send({ n: -1, tag: 'delayed' }, { delaySeconds: 0.3 })
      for (let n = 0; n < 6; n++) await q.send({ n, tag: 'now' })
      const first = await q.receive({ max: 10 })
      assert.deepEqual(
        first.map(m => m.body.n),
        [0, 1, 2, 3, 4, 5]
      )
      const [late] = await q.receive({ waitSeconds: 2 })
      assert.equal(late?.body.n, -1)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('writes each message as one JSON file and breaks a lock left by a crashed process', async () => {
    const dir = await tempDir()
    try {
      const q = new EmbeddedQueue<TestJob>(dir)
      const id = await q.send({ n: 1, tag: 'locked' })
      const file = JSON.parse(await readFile(join(dir, 'messages', `${id}.json`), 'utf8'))
      assert.deepEqual(file.body, { n: 1, tag: 'locked' })
      const lock = join(dir, 'locks', `${id}.lock`)
      await writeFile(lock, '')
      assert.deepEqual(await q.receive(), [], 'a fresh lock means someone is changing it')
      const old = new Date(Date.now() - 120_000)
      await utimes(lock, old, old)
      const [m] = await q.receive()
      assert.equal(m?.id, id)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('many racing receives across two instances never hand out one message twice', async () => {
    const dir = await tempDir()
    try {
      const a = new EmbeddedQueue<TestJob>(dir)
      const b = new EmbeddedQueue<TestJob>(dir)
      const total = 30
      for (let n = 0; n < total; n++) await a.send({ n, tag: 'race' })
      const got = (
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).receive({ max: 2, visibilitySeconds: 30 }))
        )
      ).flat()
      const ids = got.map(m => m.id)
      assert.equal(new Set(ids).size, ids.length, 'no duplicates')
      assert.equal(ids.length, total, 'every message handed out')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('close() ends a pending long poll', async () => {
    const dir = await tempDir()
    try {
      const q = new EmbeddedQueue<TestJob>(dir)
      const t0 = Date.now()
      const pending = q.receive({ waitSeconds: 10 })
      await sleep(100)
      await q.close()
      assert.deepEqual(await pending, [])
      assert.ok(Date.now() - t0 < 2000)
      await assert.rejects(q.send({ n: 1, tag: 'x' }), /closed/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
