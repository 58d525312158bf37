/** @module Test fixture: the real local deployment (API + queue + worker + demo encoder) with two small encoded datasets, for client tests (Python, CLI, store recipes). */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@latentbase/sdk'
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { startLocal, type LocalServer } from '../local-server.ts'

export interface DemoServer {
  server: LocalServer
  dataDir: string
  /** Ready datasets: spam and ham emails (SpamAssassin), `perSide` documents each. */
  spam: string
  ham: string
  /** The documents as posted, in row order. */
  documents: { spam: Array<{ id: string; text: string }>; ham: Array<{ id: string; text: string }> }
  close(): Promise<void>
}

/** Polls every 100 ms with a fresh connection each time (a kept-alive socket the server closes would fail a poll). */
async function waitReady(url: string, id: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await fetch(`${url}/datasets/${id}`, { headers: { connection: 'close' } })
    const d = (await res.json()) as { status: string; error?: { message: string } }
    if (d.status === 'ready') return
    if (d.status === 'failed') throw new Error(`dataset ${id} failed: ${d.error?.message}`)
    if (Date.now() > deadline) throw new Error(`dataset ${id} not ready after ${timeoutMs} ms (${d.status})`)
    await new Promise(r => setTimeout(r, 100))
  }
}

/** Starts the local server on a free port in a fresh data directory and encodes the two datasets (a few seconds on a CPU). */
export async function startDemoServer(perSide = 12): Promise<DemoServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'latentbase-clients-'))
  const encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  const server = await startLocal({ dataDir, port: 0, encoders, log: () => {} })
  try {
    const emails = loadSpamAssassin()
    const pick = (group: string) =>
      emails
        .filter(e => e.group === group)
        .slice(0, perSide)
        .map(e => ({ id: e.id, text: e.text.slice(0, 800), metadata: { group: e.group } }))
    const documents = { spam: pick('spam-1'), ham: pick('easy-ham-1') }
    const client = createClient({ baseUrl: server.url })
    const spam = await client.datasets.create({ name: 'spam', documents: documents.spam })
    const ham = await client.datasets.create({ name: 'ham', documents: documents.ham })
    for (const id of [spam.id, ham.id]) await waitReady(server.url, id)
    return {
      server,
      dataDir,
      spam: spam.id,
      ham: ham.id,
      documents,
      async close() {
        await server.close()
        await rm(dataDir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await server.close()
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
}
