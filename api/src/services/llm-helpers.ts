/** @module The LLM's small jobs around retrieval and clustering: query expansion, rerank of the top documents, key phrases for a clustering axis, cluster names. */
import { z } from 'zod'
import type { FailedItem } from '@latentbase/shared/contract/llm'
import { countTokens, type ChatMessage, type UsageLedger } from '@latentbase/shared/llm/cost'
import { failedItem, LlmClient, llmConfigFromEnv } from '@latentbase/shared/llm/client'
import { ApiError } from '../problem.ts'

export const LLM_NOT_CONFIGURED_DETAIL =
  'no LLM is configured: set LLM_BASE_URL (any OpenAI-compatible endpoint, e.g. https://api.openai.com/v1, a vLLM or Ollama server) and LLM_MODEL, ' +
  'plus LLM_API_KEY if the server needs one; LLM_PRICE_IN and LLM_PRICE_OUT (per million tokens) make results and dry runs state their cost'

/** What the app was given: an LLM, null (none), or nothing (read LLM_* from `env` once). */
export interface LlmDeps {
  llm?: LlmClient | null
  env?: Record<string, string | undefined>
}

const resolved = new WeakMap<object, { llm: LlmClient | null; error?: string }>()

/**
 * The app's LLM, resolved once per deps object (every route of one app shares the client, so its concurrency cap
 * and learnt token scale are global): `deps.llm` when given, else from LLM_* in `deps.env` (default process.env).
 */
export function llmOf(deps: LlmDeps): { llm: LlmClient | null; error?: string } {
  let r = resolved.get(deps)
  if (!r) {
    if (deps.llm !== undefined) r = { llm: deps.llm }
    else {
      try {
        const config = llmConfigFromEnv(deps.env ?? process.env)
        r = { llm: config ? new LlmClient(config) : null }
      } catch (err) {
        r = { llm: null, error: (err as Error).message }
      }
    }
    resolved.set(deps, r)
  }
  return r
}

/** The app's LLM, or the 503 that says why there is none: llm-misconfigured (invalid LLM_* settings) or llm-not-configured. */
export function requireLlmOf(deps: LlmDeps, what: string): LlmClient {
  const r = llmOf(deps)
  if (r.llm) return r.llm
  if (r.error)
    throw new ApiError(
      503,
      'llm-misconfigured',
      `${what} needs an LLM, and the LLM configuration is invalid: ${r.error}`
    )
  return requireLlm(null, what)
}

/** The LLM, or the 503 problem that says how to configure one (`what` names the option that asked). */
export function requireLlm(llm: LlmClient | null | undefined, what: string): LlmClient {
  if (llm) return llm
  throw new ApiError(503, 'llm-not-configured', `${what} needs an LLM; ${LLM_NOT_CONFIGURED_DETAIL}`)
}

const strings = (max: number) =>
  z.array(z.coerce.string().transform(s => s.trim())).transform(a => [...new Set(a.filter(Boolean))].slice(0, max))

// --- query expansion -------------------------------------------------------------------------------------------

export const ExpansionAnswer = z.object({ keywords: strings(12).default([]), phrases: strings(5).default([]) })
export type Expansion = z.infer<typeof ExpansionAnswer>

export function expansionMessages(query: string): ChatMessage[] {
  return [
    { role: 'system', content: 'You expand search queries for a document search engine. Reply with JSON only.' },
    {
      role: 'user',
      content:
        `A user searches a collection of documents for this property:\n<query>${query}</query>\n\n` +
        'Write (1) "keywords": up to 10 words or short terms likely to appear in the text of matching documents (for a keyword search), and ' +
        '(2) "phrases": 2 to 5 short descriptions of the property in the style of feature labels, e.g. "mentions of a refund request" (they are matched against descriptions of text features). ' +
        'Reply with JSON: {"keywords": ["..."], "phrases": ["..."]}'
    }
  ]
}

export const EXPANSION_ANSWER_TOKENS = countTokens(
  JSON.stringify({
    keywords: new Array(10).fill('keyword'),
    phrases: new Array(4).fill('mentions of a typical property')
  })
)

/** The expansion, or null with the failure recorded: a search never fails for its expansion. */
export async function expandQuery(
  llm: LlmClient,
  ledger: UsageLedger,
  query: string,
  failed: FailedItem[]
): Promise<Expansion | null> {
  try {
    return (
      await llm.chatJson(
        ExpansionAnswer,
        { step: 'expand', messages: expansionMessages(query), temperature: 0 },
        ledger
      )
    ).value
  } catch (err) {
    failed.push(failedItem(err, 'expand', 'the query expansion'))
    return null
  }
}

// --- selection of candidate latents (the SAE method) -----------------------------------------------------------

// Candidates shown to the selecting LLM: LABEL_CANDIDATES (shared/src/contract/search.ts), the paper's top 100.
export const SelectAnswer = z.object({ latents: z.array(z.coerce.number().int()) })

export function selectMessages(
  query: string,
  candidates: readonly { latent: number; label: string | null }[],
  k: number
): ChatMessage[] {
  return [
    { role: 'system', content: 'You choose text features that detect a property of documents. Reply with JSON only.' },
    {
      role: 'user',
      content:
        `Property searched for:\n<query>${query}</query>\n\nCandidate features (id: description):\n${candidates.map(c => `${c.latent}: ${c.label ?? '(no description)'}`).join('\n')}\n\n` +
        `Keep at most ${k} features whose descriptions show the property, most relevant first; leave out the rest. Reply with JSON: {"latents": [ids, most relevant first]}`
    }
  ]
}

export const selectAnswerTokens = (k: number) =>
  countTokens(JSON.stringify({ latents: Array.from({ length: k }, (_, i) => 10_000 + i) }))

// --- rerank ----------------------------------------------------------------------------------------------------

export const RerankAnswer = z.object({ ranking: z.array(z.coerce.number().int()) })

/** Characters of each document shown to the reranker: 50 of them fit a prompt of ~20k tokens. */
export const RERANK_CHARS = 1200

export function rerankMessages(query: string, documents: readonly string[]): ChatMessage[] {
  const list = documents.map((d, i) => `[${i + 1}]\n${d}`).join('\n\n')
  return [
    { role: 'system', content: 'You rank search results by relevance. Reply with JSON only.' },
    {
      role: 'user',
      content:
        `Property searched for:\n<query>${query}</query>\n\nDocuments:\n${list}\n\n` +
        `Rank the ${documents.length} documents from the one that most clearly has the property to the one that least has it. ` +
        'Reply with JSON: {"ranking": [document numbers, best first]} listing every number once.'
    }
  ]
}

export const rerankAnswerTokens = (n: number) =>
  countTokens(JSON.stringify({ ranking: Array.from({ length: n }, (_, i) => i + 1) }))

/**
 * The LLM's order of `n` documents as 0-based indices: numbers out of range and repeats are dropped, documents it
 * left out follow in their original order. Null (order unchanged) when the call fails.
 */
export async function rerankOrder(
  llm: LlmClient,
  ledger: UsageLedger,
  query: string,
  documents: readonly string[],
  failed: FailedItem[]
): Promise<number[] | null> {
  let ranking: number[]
  try {
    ranking = (
      await llm.chatJson(
        RerankAnswer,
        { step: 'rerank', messages: rerankMessages(query, documents), temperature: 0 },
        ledger
      )
    ).value.ranking
  } catch (err) {
    failed.push(failedItem(err, 'rerank', `the rerank of the top ${documents.length}`))
    return null
  }
  return completeOrder(
    ranking.map(x => x - 1),
    documents.length
  )
}

/** A permutation of [0, n): the given order's valid first occurrences, then every index it missed, ascending. */
export function completeOrder(order: readonly number[], n: number): number[] {
  const seen = new Uint8Array(n)
  const out: number[] = []
  for (const i of order)
    if (Number.isInteger(i) && i >= 0 && i < n && !seen[i]) {
      seen[i] = 1
      out.push(i)
    }
  for (let i = 0; i < n; i++) if (!seen[i]) out.push(i)
  return out
}

// --- clustering: axis phrases and cluster names ----------------------------------------------------------------

export const AxisAnswer = z.object({ phrases: strings(10) })

export function axisMessages(axis: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content: 'You help choose features for clustering documents along an axis of interest. Reply with JSON only.'
    },
    {
      role: 'user',
      content:
        `Axis of interest:\n<axis>${axis}</axis>\n\nWrite 2 to 10 short key phrases, each describing one property of documents that varies along this axis, ` +
        'in the style of feature labels (e.g. "formal tone", "mentions of a deadline"). They are matched against descriptions of text features. ' +
        'Reply with JSON: {"phrases": ["..."]}'
    }
  ]
}

export const AXIS_ANSWER_TOKENS = countTokens(
  JSON.stringify({ phrases: new Array(6).fill('mentions of a typical property') })
)

/** The axis's key phrases (2-10); throws a 502-style ApiError when the LLM gives none usable: without phrases there is nothing to cluster on. */
export async function axisPhrases(llm: LlmClient, ledger: UsageLedger, axis: string): Promise<string[]> {
  let phrases: string[]
  try {
    phrases = (await llm.chatJson(AxisAnswer, { step: 'axis', messages: axisMessages(axis), temperature: 0 }, ledger))
      .value.phrases
  } catch (err) {
    const f = failedItem(err, 'axis', 'the axis key phrases')
    throw new ApiError(502, 'llm-failed', `the LLM could not write key phrases for the axis: ${f.error}`)
  }
  if (phrases.length < 1) throw new ApiError(502, 'llm-failed', 'the LLM wrote no key phrases for the axis')
  return phrases
}

export const ClusterNameAnswer = z.object({
  name: z.string().trim().min(1).max(200),
  description: z.string().trim().max(1000).default('')
})
export type ClusterName = z.infer<typeof ClusterNameAnswer>

export function clusterNameMessages(
  latents: readonly { label: string | null; frequencyIn: number; frequencyOut: number }[],
  documents: readonly string[]
): ChatMessage[] {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`
  const features = latents
    .map(
      l =>
        `- ${l.label ?? '(unlabelled feature)'}: in ${pct(l.frequencyIn)} of the cluster vs ${pct(l.frequencyOut)} of the rest`
    )
    .join('\n')
  const docs = documents.map((d, i) => `<document${i + 1}>\n${d}\n</document${i + 1}>`).join('\n')
  return [
    { role: 'system', content: 'You name clusters of documents. Reply with JSON only.' },
    {
      role: 'user',
      content:
        `Features over-represented in this cluster:\n${features || '(none)'}\n\nIts most central documents:\n${docs || '(none)'}\n\n` +
        'Name the cluster in 2 to 6 words and describe in one sentence what its documents have in common. Reply with JSON: {"name": "...", "description": "..."}'
    }
  ]
}

export const CLUSTER_NAME_ANSWER_TOKENS = countTokens(
  JSON.stringify({
    name: 'Refund requests about delayed orders',
    description: 'Customers ask for their money back because an order arrived late or not at all.'
  })
)
