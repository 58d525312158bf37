/** @module Opt-in check against a real OpenAI-compatible endpoint (run by hand: LLM_BASE_URL=... LLM_MODEL=... node --import tsx shared/src/llm/live-check.ts): one JSON answer, its usage, and how far the token estimate is from the server's count. */
import { z } from 'zod'
import { llmFromEnv } from './client.ts'
import { countChatTokens } from './cost.ts'

async function main(): Promise<void> {
  const llm = llmFromEnv()
  if (!llm) {
    console.log('live-check: LLM_BASE_URL and LLM_MODEL are not set; nothing to check')
    return
  }
  const messages = [
    {
      role: 'system' as const,
      content:
        'You judge whether a statement about a document is true of it. Answer with JSON only: {"answer": "YES"} or {"answer": "NO"}.'
    },
    {
      role: 'user' as const,
      content:
        'Statement: This response mentions a whale.\n\nDocument:\n<document>\nCall me Ishmael. The white whale rose beside the Pequod.\n</document>\n\nIs the statement true of this document? Answer {"answer": "YES"} or {"answer": "NO"}.'
    }
  ]
  const ledger = llm.newLedger()
  const t0 = Date.now()
  const out = await llm.chatJson(z.object({ answer: z.string() }), { step: 'live-check', messages }, ledger)
  const s = ledger.summary()
  const counted = countChatTokens(messages)
  console.log(
    JSON.stringify(
      {
        model: llm.model,
        answer: out.value.answer,
        attempts: out.attempts,
        ms: Date.now() - t0,
        inputTokens: s.inputTokens,
        outputTokens: s.outputTokens,
        cost: s.cost,
        estimatedInput: counted,
        estimateError: s.inputTokens ? (counted - s.inputTokens) / s.inputTokens : null
      },
      null,
      2
    )
  )
  if (out.value.answer.toUpperCase().replace(/[^A-Z]/g, '') !== 'YES') process.exitCode = 1
}

await main()
