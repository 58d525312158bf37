/** @module Tests of the LLM adapter against the scripted loopback server: JSON validation and retries, backoff, timeouts, the concurrency cap and the ledger. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { z } from 'zod'
import {
  LlmClient,
  LlmMalformedOutputError,
  LlmRequestError,
  Semaphore,
  extractJson,
  llmConfigFromEnv,
  llmFromEnv
} from './client.ts'
import { countChatTokens, countTokens } from './cost.ts'
import { startScriptedLlm, type ScriptedLlm } from './testkit.ts'

let llm: ScriptedLlm
before(async () => {
  llm = await startScriptedLlm()
})
after(() => llm.close())

const Answer = z.object({ answer: z.enum(['YES', 'NO']) })
const ask = [{ role: 'user' as const, content: 'Is the sky blue? Answer {"answer":"YES"} or {"answer":"NO"}.' }]

function client(extra: Partial<ConstructorParameters<typeof LlmClient>[0]> = {}) {
  return new LlmClient({
    baseURL: llm.baseURL,
    model: 'scripted-1',
    apiKey: 'sk-test',
    maxRetries: 2,
    timeoutMs: 5000,
    ...extra
  })
}

test('a well-formed answer is validated; the request carries model, key, temperature 0 and json mode; usage goes to the ledger', async () => {
  llm.requests.length = 0
  llm.enqueue({ json: { answer: 'YES' } })
  const c = client({ prices: { inputPerMillion: 2, outputPerMillion: 8 } })
  const ledger = c.newLedger()
  const out = await c.chatJson(Answer, { step: 'judge', messages: ask }, ledger)
  assert.deepEqual(out.value, { answer: 'YES' })
  assert.equal(out.attempts, 1)
  const r = llm.requests[0]
  assert.equal(r.model, 'scripted-1')
  assert.equal(r.authorization, 'Bearer sk-test')
  assert.equal(r.temperature, 0)
  assert.deepEqual(r.responseFormat, { type: 'json_object' })
  const s = ledger.summary()
  assert.equal(s.calls, 1)
  assert.equal(s.inputTokens, countChatTokens(ask))
  assert.equal(s.outputTokens, countTokens('{"answer":"YES"}'))
  assert.ok(Math.abs(s.cost! - (s.inputTokens * 2 + s.outputTokens * 8) / 1e6) < 1e-15)
  assert.equal(s.steps[0].step, 'judge')
})

test('malformed JSON is retried with the error appended, then accepted; tokens of every attempt are counted', async () => {
  llm.requests.length = 0
  llm.enqueue(
    { content: 'Sure! {"answer": YES' },
    { json: { answer: 'maybe' } },
    { content: '```json\n{"answer":"NO"}\n```' }
  )
  const c = client({ jsonRetries: 2 })
  const ledger = c.newLedger()
  const out = await c.chatJson(Answer, { step: 'judge', messages: ask }, ledger)
  assert.deepEqual(out.value, { answer: 'NO' })
  assert.equal(out.attempts, 3)
  assert.equal(llm.requests.length, 3)
  const third = llm.requests[2].messages
  assert.equal(third.length, 5, 'question, bad answer, correction, bad answer, correction')
  assert.match(third[2].content, /not JSON/)
  assert.match(third[4].content, /wrong shape: answer/)
  assert.equal(ledger.summary().calls, 3)
  assert.equal(ledger.summary().inputTokens, llm.usage().inputTokens)
})

test('still malformed after the retries: a typed error carrying the raw text', async () => {
  llm.enqueue({ content: 'no idea' }, { content: 'still no idea' })
  const c = client({ jsonRetries: 1 })
  await assert.rejects(c.chatJson(Answer, { step: 'judge', messages: ask }, c.newLedger()), (err: unknown) => {
    assert.ok(err instanceof LlmMalformedOutputError)
    assert.equal(err.raw, 'still no idea')
    assert.equal(err.attempts, 2)
    return true
  })
})

test('429 with Retry-After and 500s are retried by the client, honouring the wait', async () => {
  llm.requests.length = 0
  llm.enqueue({ status: 429, retryAfter: '1' }, { status: 500 }, { json: { answer: 'YES' } })
  const c = client({ maxRetries: 3 })
  const t0 = Date.now()
  const out = await c.chatJson(Answer, { step: 'judge', messages: ask }, c.newLedger())
  const elapsed = Date.now() - t0
  assert.deepEqual(out.value, { answer: 'YES' })
  assert.deepEqual(
    llm.requests.map(r => r.status),
    [429, 500, 200]
  )
  assert.ok(elapsed >= 950, `waited ${elapsed} ms for Retry-After: 1`)
})

test('persistent failures end in LlmRequestError with the status; a 400 is not retried', async () => {
  llm.requests.length = 0
  llm.enqueue({ status: 503, retryAfterMs: 1 }, { status: 503, retryAfterMs: 1 }, { status: 503, retryAfterMs: 1 })
  const c = client({ maxRetries: 2 })
  await assert.rejects(
    c.chat({ step: 'x', messages: ask }, c.newLedger()),
    (err: unknown) => err instanceof LlmRequestError && err.status === 503
  )
  assert.equal(llm.requests.length, 3)
  llm.requests.length = 0
  llm.enqueue({ status: 400 })
  await assert.rejects(
    c.chat({ step: 'x', messages: ask }, c.newLedger()),
    (err: unknown) => err instanceof LlmRequestError && err.status === 400
  )
  assert.equal(llm.requests.length, 1)
})

test('a slow answer times out per request', async () => {
  llm.enqueue({ json: { answer: 'YES' }, delayMs: 1500 })
  const c = client({ timeoutMs: 200, maxRetries: 0 })
  const t0 = Date.now()
  await assert.rejects(
    c.chat({ step: 'slow', messages: ask }, c.newLedger()),
    (err: unknown) => err instanceof LlmRequestError && /timed out/.test(err.message)
  )
  assert.ok(Date.now() - t0 < 1200)
})

test('the concurrency cap holds for fan-out calls', async () => {
  const cap = 3
  const calls = 12
  let inFlight = 0
  let peak = 0
  let answered = 0
  // The server holds every request until the cap's worth is in flight at once (or all that are left): full fan-out is
  // reached whatever the machine's speed, so a correct client cannot fail on timing. It then holds them a moment
  // longer, so that a request past the cap, sent with them, is seen in flight beside them, before answering them
  // together. The deadline only guards against a hang: a client that never reaches the cap gets every request answered
  // from then on, and fails the peak assertion instead of timing out.
  let waiting: Array<() => void> = []
  let releasing = false
  let gaveUp = false
  const releaseAll = (): void => {
    for (const go of waiting) go()
    waiting = []
    releasing = false
  }
  llm.setResponder(async () => {
    inFlight++
    peak = Math.max(peak, inFlight)
    if (!gaveUp) {
      const timer = setTimeout(() => {
        gaveUp = true
        releaseAll()
      }, 30_000)
      await new Promise<void>(go => {
        waiting.push(go)
        if (!releasing && inFlight >= Math.min(cap, calls - answered)) {
          releasing = true
          setTimeout(releaseAll, 100)
        }
      })
      clearTimeout(timer)
    }
    inFlight--
    answered++
    return { json: { answer: 'NO' } }
  })
  try {
    const c = client({ concurrency: cap, timeoutMs: 60_000 })
    const ledger = c.newLedger()
    const out = await Promise.all(
      Array.from({ length: calls }, () => c.chatJson(Answer, { step: 'judge', messages: ask }, ledger))
    )
    assert.equal(out.length, calls)
    assert.equal(peak, cap)
    assert.equal(ledger.summary().calls, calls)
  } finally {
    llm.setResponder(undefined)
  }
})

test('a server that reports no usage is counted by the estimate rule and marked so', async () => {
  const quiet = await startScriptedLlm({ reportUsage: false, respond: () => ({ json: { answer: 'YES' } }) })
  try {
    const c = new LlmClient({ baseURL: quiet.baseURL, model: 'm' })
    const ledger = c.newLedger()
    await c.chatJson(Answer, { step: 'judge', messages: ask }, ledger)
    const s = ledger.summary().steps[0]
    assert.equal(s.estimatedCalls, 1)
    assert.equal(s.inputTokens, countChatTokens(ask))
    assert.equal(ledger.summary().cost, null, 'no prices: no cost')
  } finally {
    await quiet.close()
  }
})

test('Semaphore serves in order and frees slots on failure', async () => {
  const s = new Semaphore(1)
  const order: number[] = []
  await Promise.allSettled(
    [1, 2, 3].map(i =>
      s.run(async () => {
        order.push(i)
        if (i === 2) throw new Error('x')
      })
    )
  )
  assert.deepEqual(order, [1, 2, 3])
  assert.equal(await s.run(async () => 7), 7)
  assert.throws(() => new Semaphore(0))
})

test('extractJson tolerates fences and prose; llmConfigFromEnv reads the variables', () => {
  assert.deepEqual(extractJson('Here you go:\n{"a": [1, 2]}\nThanks'), { a: [1, 2] })
  assert.throws(() => extractJson('nothing here'))
  assert.equal(llmConfigFromEnv({}), null)
  assert.equal(llmFromEnv({ LLM_BASE_URL: 'http://x/v1' }), null, 'a model is needed too')
  const cfg = llmConfigFromEnv({
    LLM_BASE_URL: 'http://x/v1',
    LLM_MODEL: 'm',
    LLM_API_KEY: 'k',
    LLM_PRICE_IN: '0.15',
    LLM_PRICE_OUT: '0.6',
    LLM_CONCURRENCY: '8',
    LLM_JSON_MODE: 'false'
  })!
  assert.deepEqual(cfg.prices, { inputPerMillion: 0.15, outputPerMillion: 0.6, currency: 'USD' })
  assert.equal(cfg.concurrency, 8)
  assert.equal(cfg.jsonMode, false)
  assert.throws(() => llmConfigFromEnv({ LLM_BASE_URL: 'http://x/v1', LLM_MODEL: 'm', LLM_PRICE_IN: '1' }), /both/)
  assert.throws(
    () => llmConfigFromEnv({ LLM_BASE_URL: 'http://x/v1', LLM_MODEL: 'm', LLM_CONCURRENCY: '0' }),
    /positive/
  )
})
