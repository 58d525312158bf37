/** @module The offline Embedder: hashed lexical features, no model and no network. */
/**
 * What it is: each text becomes a bag of features, hashed (FNV-1a, signed) into 512 dimensions and unit-normalized:
 *  - lower-cased word tokens (runs of letters/digits; a symbol such as "@", "$" or "<" is a token too), minus a
 *    small English stopword list, weight 1;
 *  - character 3- to 5-grams of every word wrapped as "<word>" (fastText style), weight 0.35 each, so "email" still
 *    meets "emails" and "e-mail", and a label quoting a token fragment ("ated") meets words containing it;
 *  - term frequency is sublinear (1 + ln tf); there is no IDF (the embedder sees one text at a time).
 *
 * Limits: it measures lexical overlap only. It knows no synonyms ("car" and "automobile" share nothing), no
 * paraphrase, no word order beyond a word's own letters, and no language other than through shared spellings.
 * Hash collisions add a small random similarity (about 1/sqrt(512) between unrelated texts). Configure an
 * OpenAI-compatible endpoint (embedderFromEnv) for semantic similarity.
 */
import type { Embedder } from './embedder.ts'

export const OFFLINE_DIMENSIONS = 512
const WORD_WEIGHT = 1
const GRAM_WEIGHT = 0.35

/** Words that carry no property on their own: kept short on purpose (negations stay in). */
export const STOPWORDS: ReadonlySet<string> = new Set((
  'a an and are as at be been but by for from had has have he her his i if in into is it its me my of on or our ' +
  'she so than that the their them then there these they this those to us was we were what when where which who ' +
  'will with would you your about also can do does did just more most other some such only own same too very ' +
  'e g eg etc'
).split(' '))

// Symbols that say something about a text ("@" addresses, "$" prices, "<" markup) are tokens; other punctuation
// (quotes, brackets, stops, commas) is not, or every quoted label would resemble every other.
const WORD = /[\p{L}\p{N}]+|[@#$%&*+=<>\/\\|~^\p{S}]/gu

/** Lower-cased words and meaningful lone symbols, in order (stopwords included). */
export function lexicalTokens(text: string): string[] {
  return text.toLowerCase().normalize('NFKC').match(WORD) ?? []
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // Final avalanche (murmur3 fmix) so that low bits and the sign bit are both well mixed.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The feature counts of one text, keyed by a prefixed feature name ('w:' word, 'c:' character n-gram). */
function features(text: string): Map<string, number> {
  const out = new Map<string, number>()
  const add = (f: string) => out.set(f, (out.get(f) ?? 0) + 1)
  for (const tok of lexicalTokens(text)) {
    if (STOPWORDS.has(tok)) continue
    add(`w:${tok}`)
    const w = `<${tok}>`
    const chars = [...w]
    for (let n = 3; n <= 5; n++) {
      for (let i = 0; i + n <= chars.length; i++) {
        const g = chars.slice(i, i + n).join('')
        if (g !== w) add(`c:${g}`) // the whole wrapped word is already the word feature
      }
    }
  }
  return out
}

/** Embed one text into `out` (length = dimensions), unit-normalized; an empty or all-stopword text stays zero. */
export function hashEmbed(text: string, out: Float32Array): void {
  out.fill(0)
  const dims = out.length
  for (const [f, tf] of features(text)) {
    const h = fnv1a(f)
    const weight = (f.charCodeAt(0) === 119 /* w */ ? WORD_WEIGHT : GRAM_WEIGHT) * (1 + Math.log(tf))
    out[h % dims] += (h & 0x80000000 ? -1 : 1) * weight
  }
  let norm = 0
  for (let i = 0; i < dims; i++) norm += out[i] * out[i]
  if (norm > 0) {
    const s = 1 / Math.sqrt(norm)
    for (let i = 0; i < dims; i++) out[i] *= s
  }
}

export class OfflineEmbedder implements Embedder {
  readonly id: string
  constructor(readonly dimensions: number = OFFLINE_DIMENSIONS) {
    if (!(Number.isInteger(dimensions) && dimensions >= 16)) throw new RangeError(`dimensions must be an integer >= 16, got ${dimensions}`)
    this.id = dimensions === OFFLINE_DIMENSIONS ? 'offline-hash-v1' : `offline-hash-v1-${dimensions}`
  }

  async embed(texts: string[]): Promise<Float32Array> {
    const d = this.dimensions
    const out = new Float32Array(texts.length * d)
    for (let i = 0; i < texts.length; i++) hashEmbed(texts[i], out.subarray(i * d, (i + 1) * d))
    return out
  }
}
