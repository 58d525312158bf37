/** @module A small encoded fixture for the web interface's browser tests and screenshots: two datasets of short documents (cooking vs. football, both with weather) on the local server with the demo encoder. */
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { startLocal, type LocalServer } from '../../api/src/local-server.ts'

/** Deterministic pick (a small LCG) so the fixture is the same on every run. */
function picker(seed: number) {
  let s = seed >>> 0
  return <T>(xs: readonly T[]): T => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return xs[s % xs.length]
  }
}

const COOKING = [
  'Preheat the oven and whisk the flour with butter and sugar.',
  'Knead the dough, then bake the bread for forty minutes.',
  'Simmer the garlic and onions in olive oil before adding the tomatoes.',
  'The recipe calls for two cups of flour and a pinch of salt.',
  'Roast the chicken with rosemary and lemon until golden.',
  'Stir the sauce and season with pepper and fresh basil.'
]
const FOOTBALL = [
  'The striker scored a goal in the final minute of the match.',
  'The goalkeeper saved a penalty and the fans cheered.',
  'The coach changed the formation at half time.',
  'The referee showed a red card to the defender.',
  'The team won the league after a long season.',
  'A header from the corner kick sealed the victory.'
]
const WEATHER = [
  'It rained all afternoon.',
  'The sun came out in the evening.',
  'A cold wind blew from the north.',
  'Snow fell overnight.'
]

export function fixtureDocuments(
  topic: 'cooking' | 'football',
  n: number,
  seed: number
): Array<{ id: string; text: string; metadata: { topic: string; weather: boolean } }> {
  const pick = picker(seed)
  const pool = topic === 'cooking' ? COOKING : FOOTBALL
  return Array.from({ length: n }, (_, i) => {
    const weather = i % 3 === 0
    const text = [pick(pool), pick(pool), ...(weather ? [pick(WEATHER)] : [])].join(' ')
    return { id: `${topic}-${i}`, text, metadata: { topic, weather } }
  })
}

export interface Fixture {
  server: LocalServer
  a: string
  b: string
}

/** Starts the local server on `dataDir` and encodes the two datasets (about 30 short documents each: seconds). */
export async function startFixture(
  dataDir: string,
  opts: { port?: number; log?: (line: string) => void; encoders?: Map<string, LoadedEncoder> } = {}
): Promise<Fixture> {
  const encoders = opts.encoders ?? (await loadEncoders([DEMO_ENCODER_DIR], () => {}))
  const server = await startLocal({ dataDir, port: opts.port ?? 0, encoders, log: opts.log ?? (() => {}) })
  const post = async (name: string, documents: unknown[]) => {
    const res = await fetch(`${server.url}/datasets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, documents, encoder: 'demo' })
    })
    if (!res.ok) throw new Error(`POST /datasets: ${res.status} ${await res.text()}`)
    return ((await res.json()) as { id: string }).id
  }
  const a = await post('cooking', fixtureDocuments('cooking', 32, 1))
  const b = await post('football', fixtureDocuments('football', 32, 2))
  for (const id of [a, b]) await waitReady(server.url, id)
  return { server, a, b }
}

/**
 * GET with a retry when the connection itself fails: on a loaded machine the server can close an idle keep-alive socket
 * just as the client reuses it ("fetch failed"); a GET is safe to send again. HTTP errors are answers, not retried.
 */
export async function getWithRetry(url: string, tries = 3): Promise<Response> {
  for (let i = 1; ; i++) {
    try {
      return await fetch(url)
    } catch (err) {
      if (i >= tries) throw err
      await new Promise(r => setTimeout(r, 100 * i))
    }
  }
}

export async function waitReady(url: string, id: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const d = (await (await getWithRetry(`${url}/datasets/${id}`)).json()) as {
      status: string
      error?: { message: string }
    }
    if (d.status === 'ready') return
    if (d.status === 'failed') throw new Error(`dataset ${id} failed: ${d.error?.message}`)
    if (Date.now() > deadline) throw new Error(`dataset ${id} not ready in ${timeoutMs} ms`)
    await new Promise(r => setTimeout(r, 200))
  }
}
