/**
 * @module Killing the worker (SIGKILL, the whole local server process) at random moments during encoding, many times
 * over, loses and duplicates nothing: the dataset ends ready with every document once, and its shards are byte for
 * byte those of an uninterrupted run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { mulberry32 } from '@latentbase/shared/util/random'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { createClient } from '@latentbase/sdk'

const CHILD = fileURLToPath(new URL('./kill-child.ts', import.meta.url))
const docs = loadSpamAssassin()
  .filter(e => e.group === 'easy-ham-1')
  .slice(0, 48)
  .map(e => ({ id: e.id, text: e.text.slice(0, 900) }))

/** Every child started, so that a failing test still kills them: a live child would keep this test file from exiting. */
const children = new Set<ChildProcess>()

async function start(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const line = await new Promise<string>((ok, fail) => {
    const rl = createInterface({ input: child.stdout! })
    rl.once('line', ok)
    child.once('exit', code => fail(new Error(`child exited (${code}) before listening`)))
  })
  return { child, url: (JSON.parse(line) as { url: string }).url }
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(ok => {
    child.once('exit', () => ok())
    child.kill('SIGKILL')
  })
}

/** Shard files of a dataset, by path relative to the dataset folder (the record and manifest name the dataset: left out). */
async function shards(dataDir: string, id: string): Promise<Map<string, string>> {
  const root = join(dataDir, 'store', 'local', 'datasets', id)
  const out = new Map<string, string>()
  for (const sub of ['documents', 'latents/by-document', 'latents/by-latent', 'stats', 'examples']) {
    for (const name of await readdir(join(root, sub)).catch(() => [] as string[])) {
      if (name.includes('.lbtmp-')) continue
      out.set(relative(root, join(root, sub, name)), (await readFile(join(root, sub, name))).toString('base64'))
    }
  }
  return out
}

/**
 * How long a run may take to become ready: only a wait, not a speed goal (npm test runs files in parallel, and a busy
 * machine has been seen to need more than two minutes for the uninterrupted run).
 */
const READY_WITHIN_MS = 600_000

// The timeout guards against a hang, not for speed: both runs may take their whole wait, plus the kills.
test('SIGKILL during encoding, many times over: every document once, the same shards as an uninterrupted run', {
  timeout: 2 * READY_WITHIN_MS + 300_000
}, async () => {
  const refDir = await mkdtemp(join(tmpdir(), 'latentbase-kill-ref-'))
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-kill-'))
  try {
    // The uninterrupted run.
    let s = await start(refDir)
    const ref = await createClient({ baseUrl: s.url, poll: { maxIntervalMs: 1000 } }).datasets.create({
      documents: docs
    })
    await createClient({ baseUrl: s.url, poll: { maxIntervalMs: 1000 } }).datasets.waitUntilReady(ref.id, {
      timeoutMs: READY_WITHIN_MS,
      intervalMs: 100
    })
    await kill(s.child)
    const expected = await shards(refDir, ref.id)
    assert.ok(expected.size >= 10, `${expected.size} shard files`)

    // The killed run: kill at random moments until the dataset is ready.
    const rand = mulberry32(7)
    s = await start(dir)
    let client = createClient({ baseUrl: s.url, poll: { maxIntervalMs: 1000 } })
    const created = await client.datasets.create({ documents: docs })
    let kills = 0
    for (;;) {
      await new Promise(r => setTimeout(r, 200 + rand() * 1200))
      const d = await client.datasets.get(created.id)
      if (d.status === 'ready' || kills >= 12) break
      await kill(s.child)
      kills++
      s = await start(dir)
      client = createClient({ baseUrl: s.url, poll: { maxIntervalMs: 1000 } })
    }
    const ready = await client.datasets.waitUntilReady(created.id, { timeoutMs: READY_WITHIN_MS, intervalMs: 100 })
    await kill(s.child)
    assert.ok(kills >= 3, `killed ${kills} times before the job finished`)
    assert.ok(
      (ready.attempts ?? 0) >= 2 || (ready.stats?.parts?.redelivered ?? 0) >= 1,
      `the kills cut jobs off: plan attempts ${ready.attempts}, parts ${JSON.stringify(ready.stats?.parts)}`
    )
    assert.equal(ready.stats!.documents, docs.length, 'every document once')
    const got = await shards(dir, created.id)
    assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), 'the same shard files')
    for (const [key, bytes] of expected) assert.equal(got.get(key), bytes, `${key} differs from the uninterrupted run`)
  } finally {
    await Promise.all([...children].map(kill))
    await rm(refDir, { recursive: true, force: true })
    await rm(dir, { recursive: true, force: true })
  }
})
