/** @module Token estimates, the price table and the usage ledger: what an LLM step will cost before it runs, and what it did cost after. */

/**
 * The token-count rule used for dry-run estimates (and, in tests, by the scripted server to report usage).
 * Text is split GPT-style into pieces (an optional leading space with a run of letters, a run of digits,
 * a run of other symbols, or whitespace); a letter run costs one token per 5 letters (rounded up), a
 * digit run one per 3 digits (cl100k and o200k split numbers in threes), each symbol one token, and a
 * whitespace run one token unless it is a single space glued to the next word; other characters (CJK
 * included) one token each. Measured against the Llama 2 tokenizer: +4% on Moby-Dick, +16% on State of the
 * Union addresses (cost.test.ts); larger-vocabulary tokenizers count fewer. It needs no vocabulary, so it runs
 * anywhere; LlmClient.tokenScale() corrects it to a server's own counts once that server has answered.
 */
export function countTokens(text: string): number {
  let n = 0
  const re = / ?[A-Za-z\u00C0-\u024F]+| ?\d+|\s+|[^\sA-Za-z\d]/gu
  for (const m of text.matchAll(re)) {
    const piece = m[0]
    const core = piece.charCodeAt(0) === 32 && piece.length > 1 ? piece.slice(1) : piece
    const first = core.charCodeAt(0)
    if (first >= 48 && first <= 57) n += Math.ceil(core.length / 3)
    else if (/\s/.test(core)) n += 1
    else if (/[A-Za-z\u00C0-\u024F]/.test(core[0])) n += Math.ceil(core.length / 5)
    else n += 1
  }
  return n
}

/** Per-message framing of the chat format (OpenAI's documented accounting: 3 per message, 3 to prime the reply). */
export const TOKENS_PER_MESSAGE = 3
export const TOKENS_PER_REPLY = 3

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

/** Prompt tokens of a chat request by the countTokens rule, with the chat format's framing. */
export function countChatTokens(messages: readonly ChatMessage[]): number {
  let n = TOKENS_PER_REPLY
  for (const m of messages) n += TOKENS_PER_MESSAGE + countTokens(m.role) + countTokens(m.content)
  return n
}

/** Prices in currency units (USD unless said otherwise) per million tokens. */
export interface PriceTable {
  inputPerMillion: number
  outputPerMillion: number
  currency?: string
}

export interface TokenUsage {
  inputTokens: number
  outputTokens: number
}

/** Cost of some usage, or null when no prices are configured (results then state tokens only). */
export function costOf(usage: TokenUsage, prices: PriceTable | null | undefined): number | null {
  if (!prices) return null
  return (usage.inputTokens * prices.inputPerMillion + usage.outputTokens * prices.outputPerMillion) / 1e6
}

/** One step's totals in a ledger (a step is a kind of call: 'hypotheses', 'judge', 'baseline-propose'...). */
export interface StepUsage extends TokenUsage {
  step: string
  calls: number
  /** Calls whose usage the server did not report and that were counted with countTokens instead. */
  estimatedCalls: number
  cost: number | null
}

export interface UsageSummary extends TokenUsage {
  calls: number
  cost: number | null
  currency: string
  steps: StepUsage[]
}

/** Tokens in and out per step, summed over calls (failed attempts included: they were paid for). */
export class UsageLedger {
  private readonly steps = new Map<string, StepUsage>()
  constructor(readonly prices: PriceTable | null = null) {}

  record(step: string, usage: TokenUsage, estimated = false): void {
    let s = this.steps.get(step)
    if (!s) {
      s = { step, calls: 0, estimatedCalls: 0, inputTokens: 0, outputTokens: 0, cost: null }
      this.steps.set(step, s)
    }
    s.calls++
    if (estimated) s.estimatedCalls++
    s.inputTokens += usage.inputTokens
    s.outputTokens += usage.outputTokens
    s.cost = costOf(s, this.prices)
  }

  summary(): UsageSummary {
    const steps = [...this.steps.values()].map(s => ({ ...s }))
    const inputTokens = steps.reduce((a, s) => a + s.inputTokens, 0)
    const outputTokens = steps.reduce((a, s) => a + s.outputTokens, 0)
    return {
      calls: steps.reduce((a, s) => a + s.calls, 0),
      inputTokens,
      outputTokens,
      cost: costOf({ inputTokens, outputTokens }, this.prices),
      currency: this.prices?.currency ?? 'USD',
      steps
    }
  }
}

/**
 * Two spendings as one (a job's fit and its merge): steps of the same name added, totals and cost summed (cost null
 * when either is). `a` may be absent.
 */
export function addUsage(a: UsageSummary | undefined, b: UsageSummary): UsageSummary {
  if (!a) return b
  const steps = new Map<string, UsageSummary['steps'][number]>()
  for (const s of [...a.steps, ...b.steps]) {
    const had = steps.get(s.step)
    steps.set(
      s.step,
      had
        ? {
            ...had,
            calls: had.calls + s.calls,
            estimatedCalls: (had.estimatedCalls ?? 0) + (s.estimatedCalls ?? 0),
            inputTokens: had.inputTokens + s.inputTokens,
            outputTokens: had.outputTokens + s.outputTokens,
            cost: had.cost === null || s.cost === null ? null : had.cost + s.cost
          }
        : { ...s }
    )
  }
  return {
    calls: a.calls + b.calls,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cost: a.cost === null || b.cost === null ? null : a.cost + b.cost,
    currency: b.currency,
    steps: [...steps.values()]
  }
}

/** A planned call, for dry runs: its prompt and the tokens its answer is expected to take. */
export interface PlannedCall {
  step: string
  messages: readonly ChatMessage[]
  expectedOutputTokens: number
}

export interface CostEstimate extends TokenUsage {
  calls: number
  cost: number | null
  currency: string
  steps: Array<TokenUsage & { step: string; calls: number; cost: number | null }>
}

/** Multipliers from our countTokens rule to the server's tokenizer, learnt from the usage it reported (1 when unknown). */
export interface TokenScale {
  input: number
  output: number
}

/**
 * The estimate of a plan of calls (no retries assumed: a malformed answer costs one more call than estimated). `scale`
 * converts countTokens units into the server's own tokens (LlmClient.tokenScale(), learnt from earlier answers).
 */
export function estimatePlan(
  calls: Iterable<PlannedCall>,
  prices: PriceTable | null,
  scale: TokenScale = { input: 1, output: 1 }
): CostEstimate {
  const steps = new Map<string, TokenUsage & { step: string; calls: number; cost: number | null }>()
  for (const c of calls) {
    let s = steps.get(c.step)
    if (!s) {
      s = { step: c.step, calls: 0, inputTokens: 0, outputTokens: 0, cost: null }
      steps.set(c.step, s)
    }
    s.calls++
    s.inputTokens += countChatTokens(c.messages)
    s.outputTokens += c.expectedOutputTokens
  }
  const list = [...steps.values()].map(s => {
    const scaled = {
      ...s,
      inputTokens: Math.round(s.inputTokens * scale.input),
      outputTokens: Math.round(s.outputTokens * scale.output)
    }
    return { ...scaled, cost: costOf(scaled, prices) }
  })
  const inputTokens = list.reduce((a, s) => a + s.inputTokens, 0)
  const outputTokens = list.reduce((a, s) => a + s.outputTokens, 0)
  return {
    calls: list.reduce((a, s) => a + s.calls, 0),
    inputTokens,
    outputTokens,
    cost: costOf({ inputTokens, outputTokens }, prices),
    currency: prices?.currency ?? 'USD',
    steps: list
  }
}
