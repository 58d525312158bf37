/** @module A durable JobQueue on the local disk (the embedded default): one JSON file per message, leases with visibility deadlines, dead letters. */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { JobQueue, QueueMessage, ReceiveOptions, SendOptions } from './job-queue.ts'

export interface EmbeddedQueueOptions<T> {
  /** A message received this many times without an ack is dead-lettered on its next delivery. */
  maxReceives?: number
  /**
   * Told about a dead-lettered message (so the caller can mark the dataset failed). The message moves
   * to `dead/` only after this resolves; if it throws, dead-lettering is tried again later.
   */
  deadLetter?: (message: QueueMessage<T>, reason: string) => Promise<void> | void
  /** Default visibility of a received message when receive() does not say. */
  visibilitySeconds?: number
  /** How often a long poll looks at the disk for messages sent by other processes or leases that ran out. */
  pollIntervalMs?: number
  /** fsync each message file before it is renamed into place (survives power loss, not only a crash). */
  fsync?: boolean
}

/** Thrown by extend() when the lease ran out and the message was taken back (or acked elsewhere). */
export class LeaseLostError extends Error {
  constructor(id: string) {
    super(`lease on message ${id} was lost: its visibility ran out and it was redelivered or removed`)
    this.name = 'LeaseLostError'
  }
}

/** What is on disk for each message. `receipt` names the current lease; visibleAt (ms) is the next time it may be delivered. */
interface MessageRecord<T> {
  id: string
  body: T
  sentAt: number
  visibleAt: number
  receiveCount: number
  receipt: string | null
}

interface DeadRecord<T> extends MessageRecord<T> {
  reason: string
  deadAt: number
}

const DEFAULT_VISIBILITY_SECONDS = 30
/** Locks are held only for a few file operations; one this old was left by a crashed process. */
const LOCK_STALE_MS = 30_000
const LOCK_WAIT_MS = 5_000
const TMP_STALE_MS = 60_000

/** In-process wake-ups, shared by every instance on the same folder, so a send wakes a long poll at once. */
const notifiers = new Map<string, { generation: number; waiters: Set<() => void> }>()
function notifierFor(dir: string) {
  let n = notifiers.get(dir)
  if (!n) {
    n = { generation: 0, waiters: new Set() }
    notifiers.set(dir, n)
  }
  return n
}

let idCounter = 0
/** Time-ordered ids so ties in availability time still come out in send order. */
function newId(now: number): string {
  idCounter = (idCounter + 1) % 36 ** 4
  return `${now.toString(36).padStart(9, '0')}${idCounter.toString(36).padStart(4, '0')}-${randomBytes(6).toString('hex')}`
}

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))
const isCode = (err: unknown, code: string) => (err as NodeJS.ErrnoException | undefined)?.code === code

export class EmbeddedQueue<T = unknown> implements JobQueue<T> {
  readonly dir: string
  readonly maxReceives: number
  readonly #deadLetter?: EmbeddedQueueOptions<T>['deadLetter']
  readonly #visibilityMs: number
  readonly #pollMs: number
  readonly #fsync: boolean
  readonly #receipts = new WeakMap<QueueMessage<T>, string>()
  readonly #wakeClosed = new Set<() => void>()
  #ready?: Promise<void>
  #closed = false

  constructor(dir: string, options: EmbeddedQueueOptions<T> = {}) {
    this.dir = resolve(dir)
    this.maxReceives = options.maxReceives ?? 5
    if (!Number.isInteger(this.maxReceives) || this.maxReceives < 1)
      throw new RangeError('maxReceives must be an integer >= 1')
    this.#deadLetter = options.deadLetter
    this.#visibilityMs = (options.visibilitySeconds ?? DEFAULT_VISIBILITY_SECONDS) * 1000
    this.#pollMs = options.pollIntervalMs ?? 250
    this.#fsync = options.fsync ?? true
  }

  get #messages() {
    return join(this.dir, 'messages')
  }
  get #locks() {
    return join(this.dir, 'locks')
  }
  get #tmp() {
    return join(this.dir, 'tmp')
  }
  get #dead() {
    return join(this.dir, 'dead')
  }

  async send(body: T, options: SendOptions = {}): Promise<string> {
    await this.#init()
    const delay = options.delaySeconds ?? 0
    if (!(delay >= 0)) throw new RangeError('delaySeconds must be >= 0')
    const now = Date.now()
    const record: MessageRecord<T> = {
      id: newId(now),
      body,
      sentAt: now,
      visibleAt: now + delay * 1000,
      receiveCount: 0,
      receipt: null
    }
    await this.#write(join(this.#messages, `${record.id}.json`), record)
    this.#notify()
    return record.id
  }

  async receive(options: ReceiveOptions = {}): Promise<QueueMessage<T>[]> {
    await this.#init()
    const max = Math.max(1, options.max ?? 1)
    const visibilityMs = options.visibilitySeconds !== undefined ? options.visibilitySeconds * 1000 : this.#visibilityMs
    const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000
    const notifier = notifierFor(this.dir)
    for (;;) {
      const generation = notifier.generation
      const { messages, nextVisibleAt } = await this.#tryReceive(max, visibilityMs)
      const now = Date.now()
      if (messages.length > 0 || now >= deadline || this.#closed || options.signal?.aborted) return messages
      const until = Math.min(deadline, nextVisibleAt, now + this.#pollMs)
      await this.#waitForWake(generation, until - now, options.signal)
    }
  }

  async ack(message: QueueMessage<T>): Promise<void> {
    const receipt = this.#receiptOf(message)
    await this.#withLock(message.id, async () => {
      const current = await this.#read(message.id)
      if (!current) return
      // Our lease, or a lease that ran out and nobody took up again: the work is done, so drop it.
      // If another consumer holds it now, leave it to them (at least once, never lost).
      if (current.receipt === receipt || current.visibleAt <= Date.now())
        await unlinkIfPresent(this.#messagePath(message.id))
    })
    this.#receipts.delete(message)
  }

  async extend(message: QueueMessage<T>, visibilitySeconds: number): Promise<void> {
    const receipt = this.#receiptOf(message)
    if (!(visibilitySeconds >= 0)) throw new RangeError('visibilitySeconds must be >= 0')
    await this.#withLock(message.id, async () => {
      const current = await this.#read(message.id)
      if (!current || current.receipt !== receipt) throw new LeaseLostError(message.id)
      current.visibleAt = Date.now() + visibilitySeconds * 1000
      await this.#write(this.#messagePath(message.id), current)
    })
    if (visibilitySeconds === 0) this.#notify()
  }

  async depth(): Promise<{ waiting: number; inFlight: number }> {
    await this.#init()
    const now = Date.now()
    let waiting = 0
    let inFlight = 0
    for (const r of await this.#scan()) {
      if (r.receipt !== null && r.visibleAt > now) inFlight++
      else waiting++
    }
    return { waiting, inFlight }
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const wake of this.#wakeClosed) wake()
  }

  /** Messages that were dead-lettered, oldest first (for operators and tests). */
  async deadLetters(): Promise<Array<QueueMessage<T> & { reason: string; deadAt: number }>> {
    await this.#init()
    const out: Array<QueueMessage<T> & { reason: string; deadAt: number }> = []
    for (const name of (await readdir(this.#dead)).sort()) {
      if (!name.endsWith('.json')) continue
      const r = JSON.parse(await readFile(join(this.#dead, name), 'utf8')) as DeadRecord<T>
      out.push({ id: r.id, body: r.body, receiveCount: r.receiveCount, reason: r.reason, deadAt: r.deadAt })
    }
    return out.sort((a, b) => a.deadAt - b.deadAt)
  }

  async #tryReceive(max: number, visibilityMs: number) {
    const now = Date.now()
    const records = await this.#scan()
    let nextVisibleAt = Infinity
    const due: MessageRecord<T>[] = []
    for (const r of records) {
      if (r.visibleAt <= now) due.push(r)
      else nextVisibleAt = Math.min(nextVisibleAt, r.visibleAt)
    }
    due.sort((a, b) => a.visibleAt - b.visibleAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const messages: QueueMessage<T>[] = []
    const toDeadLetter: MessageRecord<T>[] = []
    for (const candidate of due) {
      if (messages.length >= max) break
      const unlock = await this.#tryLock(candidate.id)
      if (!unlock) continue // another instance is taking it right now
      try {
        const current = await this.#read(candidate.id)
        const at = Date.now()
        if (!current || current.visibleAt > at) continue
        current.receipt = randomBytes(12).toString('hex')
        if (current.receiveCount >= this.maxReceives) {
          current.receipt = `dead-letter:${current.receipt}`
          // Leased to the dead-letterer like any delivery: if the callback fails, it is tried again when this runs out.
          current.visibleAt = at + visibilityMs
          await this.#write(this.#messagePath(current.id), current)
          toDeadLetter.push(current)
          continue
        }
        current.receiveCount += 1
        current.visibleAt = at + visibilityMs
        await this.#write(this.#messagePath(current.id), current)
        const message: QueueMessage<T> = { id: current.id, body: current.body, receiveCount: current.receiveCount }
        this.#receipts.set(message, current.receipt)
        messages.push(message)
      } finally {
        await unlock()
      }
    }
    for (const record of toDeadLetter) await this.#moveToDead(record)
    return { messages, nextVisibleAt }
  }

  async #moveToDead(record: MessageRecord<T>): Promise<void> {
    const reason = `received ${record.receiveCount} times without an acknowledgement (maxReceives ${this.maxReceives})`
    try {
      await this.#deadLetter?.({ id: record.id, body: record.body, receiveCount: record.receiveCount }, reason)
    } catch {
      // Left leased to the dead-letterer: when that lease runs out, dead-lettering (and the callback) is tried again.
      return
    }
    await this.#withLock(record.id, async () => {
      const current = await this.#read(record.id)
      if (!current || current.receipt !== record.receipt) return
      const dead: DeadRecord<T> = { ...current, receipt: null, reason, deadAt: Date.now() }
      await this.#write(join(this.#dead, `${record.id}.json`), dead)
      await unlinkIfPresent(this.#messagePath(record.id))
    })
  }

  #receiptOf(message: QueueMessage<T>): string {
    const receipt = this.#receipts.get(message)
    if (!receipt)
      throw new Error(
        `message ${message.id} was not received from this EmbeddedQueue instance (pass the object receive() returned)`
      )
    return receipt
  }

  #messagePath(id: string) {
    return join(this.#messages, `${id}.json`)
  }

  #init(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`EmbeddedQueue on ${this.dir} is closed`))
    this.#ready ??= (async () => {
      for (const d of [this.#messages, this.#locks, this.#tmp, this.#dead]) await mkdir(d, { recursive: true })
      // Temp files from a crash mid-write; fresh ones may belong to another live instance.
      const now = Date.now()
      for (const name of await readdir(this.#tmp)) {
        const p = join(this.#tmp, name)
        try {
          if (now - (await stat(p)).mtimeMs > TMP_STALE_MS) await unlink(p)
        } catch {}
      }
    })()
    return this.#ready
  }

  async #scan(): Promise<MessageRecord<T>[]> {
    const names = await readdir(this.#messages)
    const out: MessageRecord<T>[] = []
    for (const name of names) {
      if (!name.endsWith('.json')) continue
      const r = await this.#read(name.slice(0, -5))
      if (r) out.push(r)
    }
    return out
  }

  async #read(id: string): Promise<MessageRecord<T> | undefined> {
    try {
      return JSON.parse(await readFile(this.#messagePath(id), 'utf8')) as MessageRecord<T>
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined
      throw err
    }
  }

  /** Whole-file replace: a reader sees the old record or the new one, never half of one. */
  async #write(path: string, value: unknown): Promise<void> {
    const tmp = join(this.#tmp, `${randomBytes(8).toString('hex')}.tmp`)
    const fh = await open(tmp, 'wx')
    try {
      await fh.writeFile(JSON.stringify(value))
      if (this.#fsync) await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  }

  /** Exclusive create of `locks/<id>.lock`: whoever creates it may change that message. */
  async #tryLock(id: string): Promise<(() => Promise<void>) | undefined> {
    const path = join(this.#locks, `${id}.lock`)
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, 'wx')
        await fh.close()
        return () => unlinkIfPresent(path)
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err
      }
      try {
        if (Date.now() - (await stat(path)).mtimeMs < LOCK_STALE_MS) return undefined
        // Left by a crashed process. Renaming first means only one breaker wins.
        const aside = `${path}.stale-${randomBytes(4).toString('hex')}`
        await rename(path, aside)
        await unlinkIfPresent(aside)
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err
      }
    }
    return undefined
  }

  async #withLock(id: string, fn: () => Promise<void>): Promise<void> {
    await this.#init()
    const give = Date.now() + LOCK_WAIT_MS
    for (;;) {
      const unlock = await this.#tryLock(id)
      if (unlock) {
        try {
          return await fn()
        } finally {
          await unlock()
        }
      }
      if (Date.now() > give) throw new Error(`timed out waiting for the lock on message ${id} in ${this.dir}`)
      await sleep(5)
    }
  }

  #notify() {
    const n = notifierFor(this.dir)
    n.generation++
    for (const wake of n.waiters) wake()
  }

  #waitForWake(generation: number, ms: number, signal?: AbortSignal): Promise<void> {
    const n = notifierFor(this.dir)
    if (n.generation !== generation || ms <= 0) return Promise.resolve()
    return new Promise(resolve => {
      const done = () => {
        clearTimeout(timer)
        n.waiters.delete(done)
        this.#wakeClosed.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      n.waiters.add(done)
      this.#wakeClosed.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err
  }
}
