/** @module Tests of the OpenAI-compatible embedder against a loopback server that speaks the embeddings API. */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { OpenAIEmbedder, embedderFromEnv, type EmbeddingRequestError } from './openai.ts'
import { OfflineEmbedder } from './offline.ts'

interface Seen {
  auth: string | undefined
  model: string
  inputs: string[]
}
const seen: Seen[] = []
/** Status codes to answer before answering normally, consumed one per request. */
const failures: number[] = []
let server: Server
let baseURL = ''

// Embeds text t as [len(t), 1, 2] (unnormalized, so the client must normalize), answered in reverse order.
before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', c => {
      body += c
    })
    req.on('end', () => {
      if (req.url !== '/v1/embeddings' || req.method !== 'POST') {
        res.writeHead(404).end()
        return
      }
      const fail = failures.shift()
      if (fail) {
        res.writeHead(fail, { 'content-type': 'application/json', ...(fail === 429 ? { 'retry-after': '0' } : {}) })
        res.end(JSON.stringify({ error: { message: 'slow down' } }))
        return
      }
      const { model, input } = JSON.parse(body) as { model: string; input: string[] }
      seen.push({ auth: req.headers.authorization, model, inputs: input })
      const data = input.map((t, index) => ({ object: 'embedding', index, embedding: [t.length, 1, 2] })).reverse()
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: 0, total_tokens: 0 } }))
    })
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  const addr = server.address()
  baseURL = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1`
})
after(() => new Promise<void>(ok => server.close(() => ok())))

const noSleep = async () => {}

test('embeds in batches of at most 256, in input order, normalized, with the bearer key', async () => {
  seen.length = 0
  const e = new OpenAIEmbedder({ baseURL, model: 'm1', apiKey: 'sk-test', sleep: noSleep })
  assert.equal(e.id, 'openai:m1')
  const texts = Array.from({ length: 300 }, (_, i) => 'x'.repeat(i % 7))
  const v = await e.embed(texts)
  assert.equal(e.dimensions, 3)
  assert.deepEqual(
    seen.map(s => s.inputs.length),
    [256, 44]
  )
  assert.ok(seen.every(s => s.auth === 'Bearer sk-test' && s.model === 'm1'))
  for (const i of [0, 5, 299]) {
    const len = texts[i].length || 1 // '' is sent as ' '
    const norm = Math.hypot(len, 1, 2)
    assert.ok(Math.abs(v[i * 3] - len / norm) < 1e-6, `row ${i} in input order`)
    assert.ok(Math.abs(v[i * 3 + 2] - 2 / norm) < 1e-6)
  }
  assert.equal(seen[0].inputs[0], ' ', 'empty strings are sent as a space')
})

test('a 429 and a 503 are retried, then the answer is used', async () => {
  seen.length = 0
  failures.push(429, 503)
  const waits: number[] = []
  const e = new OpenAIEmbedder({
    baseURL,
    model: 'm2',
    sleep: async ms => {
      waits.push(ms)
    },
    backoffMs: 10
  })
  const v = await e.embed(['abc'])
  assert.equal(waits.length, 2)
  assert.equal(waits[0], 0, 'Retry-After: 0 is honoured')
  assert.equal(seen.length, 1)
  assert.equal(seen[0].auth, undefined)
  assert.ok(Math.abs(v[0] - 3 / Math.hypot(3, 1, 2)) < 1e-6)
})

test('a 400 is not retried; persistent 429s give up after maxAttempts', async () => {
  failures.push(400)
  const e = new OpenAIEmbedder({ baseURL, model: 'm3', sleep: noSleep, maxAttempts: 3 })
  await assert.rejects(e.embed(['a']), (err: EmbeddingRequestError) => err.status === 400)
  assert.equal(failures.length, 0)
  failures.push(429, 429, 429, 429)
  await assert.rejects(e.embed(['a']), (err: EmbeddingRequestError) => err.status === 429)
  assert.equal(failures.length, 1, 'three attempts consumed three failures')
  failures.length = 0
})

test('embedderFromEnv: offline without configuration, the endpoint when a base URL is set', async () => {
  assert.ok(embedderFromEnv({}) instanceof OfflineEmbedder)
  const e = embedderFromEnv({ EMBEDDINGS_BASE_URL: baseURL, EMBEDDINGS_MODEL: 'from-env', EMBEDDINGS_API_KEY: 'k' })
  assert.equal(e.id, 'openai:from-env')
  seen.length = 0
  await e.embed(['hello'])
  assert.equal(seen[0].model, 'from-env')
  assert.equal(seen[0].auth, 'Bearer k')
  assert.equal(embedderFromEnv({ EMBEDDINGS_API_KEY: 'k' }).id, 'openai:text-embedding-3-small')
  assert.throws(() => embedderFromEnv({ EMBEDDINGS_API_KEY: 'k', EMBEDDINGS_DIMENSIONS: 'many' }))
})
