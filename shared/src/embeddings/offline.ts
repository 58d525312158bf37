/** @module The offline Embedder: hashed lexical features plus a word-neighbour lexicon, no model and no network. */
/**
 * What it is: each text becomes a bag of features, hashed (FNV-1a, signed) into 512 dimensions and unit-normalized:
 *  - lower-cased word tokens (runs of letters/digits; a symbol such as "@", "$" or "<" is a token too), minus a
 *    small English stopword list, weight 1 x (1 + ln tf);
 *  - character 3- to 5-grams of every word wrapped as "<word>" (fastText style), weight 0.35 each, so "email" still
 *    meets "emails" and "e-mail", and a label quoting a token fragment ("ated") meets words containing it;
 *  - the word's neighbours in meaning from the lexicon (shared/assets/offline-lexicon.txt: up to 6 per word for ~22k English
 *    words, from word vectors trained on public text and retrofitted to WordNet synsets; made symmetric), each as a
 *    word feature of weight 0.6 x similarity: "cash" carries some "money" and "money" some "cash", so the two meet;
 *  - there is no IDF (the embedder sees one text at a time).
 *
 * Limits: similarity is word-to-word only. It knows no paraphrase beyond single-word neighbours, no word order beyond
 * a word's own letters, no negation, no word outside its lexicon except by spelling, and no language but English.
 * Hash collisions add a small random similarity (about 1/sqrt(512) between unrelated texts). Configure an
 * OpenAI-compatible endpoint (embedderFromEnv) for real semantic similarity.
 */
import type { Embedder } from './embedder.ts'
import { LEXICON_FILE, LEXICON_VERSION } from './offline-lexicon.ts'

export const OFFLINE_DIMENSIONS = 512
const WORD_WEIGHT = 1
const GRAM_WEIGHT = 0.35
/** Weight of a lexicon neighbour per unit of similarity (neighbours have similarity 0.2-0.99). */
const NEIGHBOUR_WEIGHT = 0.6
/** Part of every cache key of label embeddings: changes whenever the features or the lexicon change. */
export const OFFLINE_EMBEDDER_ID = `offline-v2-${LEXICON_VERSION}`

/**
 * Where the lexicon comes from: a file in Node (the default, as UTF-8 bytes), the ASSETS binding in the Worker
 * (api/src/worker.ts, as text). Bytes are searched where they lie when the runtime has Node's Buffer, so a fresh
 * process's first query never decodes the whole 1.6 MB.
 */
export type LexiconLoader = () => Promise<string | Uint8Array>

type NodeFs = { readFile(path: string | URL): Promise<Uint8Array> }
/**
 * The default loader: shared/assets/offline-lexicon.txt beside this source tree, or under the working directory (a
 * bundled Lambda, which ships the file with `copyFiles`). node:fs comes through process.getBuiltinModule, not an
 * import, so the Worker's import graph stays free of node: modules.
 */
export async function readLexiconFile(): Promise<Uint8Array> {
  const proc = (globalThis as { process?: { cwd(): string; getBuiltinModule?: (id: string) => unknown } }).process
  const fs = proc?.getBuiltinModule?.('node:fs/promises') as NodeFs | undefined
  if (!fs || !proc)
    throw new Error(
      `no file system to read the offline embedder's lexicon from: inject a loader with setLexiconLoader (the Worker reads ${LEXICON_FILE} from its ASSETS binding)`
    )
  const candidates = [
    new URL(`../../assets/${LEXICON_FILE}`, import.meta.url),
    `${proc.cwd()}/shared/assets/${LEXICON_FILE}`
  ]
  let first: unknown
  for (const at of candidates) {
    try {
      return await fs.readFile(at)
    } catch (e) {
      first ??= e
    }
  }
  throw new Error(
    `the offline embedder's lexicon (shared/assets/${LEXICON_FILE}) was not found: ${(first as Error).message}`
  )
}

let loader: LexiconLoader = readLexiconFile
/** The lexicon as read: its text, or its UTF-8 bytes in a Buffer (searched natively, lines decoded one by one). */
let lexiconText: LexiconText | undefined
/** Every word's neighbours, parsed once many words are asked for (embedding an encoder's labels). */
let lexicon: Map<string, Array<[string, number]>> | undefined
/** Neighbours of the few words asked for before that (a query's words), each found in the text alone. */
const scanned = new Map<string, Array<[string, number]>>()
let loading: Promise<void> | undefined

/**
 * Distinct words looked up in the text before the whole lexicon is parsed. A lookup scans the 1.6 MB text for the
 * word (measured 3.5 ms a word on the loaded 2-core machine); the full parse costs ~400x that (1.4 s there) and
 * ~10 MB of maps, which a fresh process's first query (a serverless cold start) should not pay for its few words.
 * Past this many words (a busy process: about 80 queries of 3 new words) one request pays the parse, as the first
 * one used to; a batch of labels parses up front (FULL_PARSE_TEXTS).
 */
export const LEXICON_SCAN_WORDS = 256
/** Texts per embed call from which the whole lexicon is parsed up front (a batch of labels, not a query). */
const FULL_PARSE_TEXTS = 16

/** Where the lexicon is read from (the Worker injects its ASSETS binding); forgets a lexicon already loaded. */
export function setLexiconLoader(load: LexiconLoader): void {
  loader = load
  lexiconText = undefined
  lexicon = undefined
  scanned.clear()
  loading = undefined
}

/**
 * Reads the lexicon's text once (parsed lazily: see neighboursOf); OfflineEmbedder.embed awaits it. A failed read is
 * not remembered, so the next call tries again.
 */
export function loadLexicon(): Promise<void> {
  loading ??= loader().then(
    text => {
      lexiconText = lexiconTextOf(text)
    },
    (e: unknown) => {
      loading = undefined
      throw e
    }
  )
  return loading
}

/** Keeps the larger similarity of a repeated pair, at its first place (insertion order breaks ties in the sort). */
function link(m: Map<string, number>, b: string, sim: number): void {
  m.set(b, Math.max(m.get(b) ?? 0, sim))
}

const bySimilarity = (x: [string, number], y: [string, number]) => y[1] - x[1]

/** Every word's neighbours, most similar first, made symmetric: when "vessel" lists "ship", "ship" gets "vessel". */
export function parseLexicon(text: string): Map<string, Array<[string, number]>> {
  const map = new Map<string, Map<string, number>>()
  const of = (a: string) => {
    let m = map.get(a)
    if (!m) map.set(a, (m = new Map()))
    return m
  }
  for (const line of text.split('\n')) {
    if (!line) continue
    const parts = line.split(' ')
    for (const p of parts.slice(1)) {
      const at = p.lastIndexOf(':')
      const sim = Number(p.slice(at + 1))
      link(of(parts[0]), p.slice(0, at), sim)
      link(of(p.slice(0, at)), parts[0], sim)
    }
  }
  return new Map([...map].map(([w, m]) => [w, [...m].sort(bySimilarity)]))
}

/**
 * One word's neighbours as parseLexicon gives them, from the lines that name it only: its own line and the lines
 * listing it as a neighbour, found by searching the text, then read in file order with parseLexicon's rules (so the
 * order of ties and the larger of repeated similarities come out the same). [] for a word the lexicon lacks.
 */
export function scanLexicon(lexicon: LexiconText, word: string): Array<[string, number]> {
  if (!word || word.includes(' ') || word.includes('\n')) return []
  // Offsets are characters in a string and bytes in a Buffer; both are only compared and sliced with each other.
  const text = lexicon as string
  const starts = new Set<number>()
  if (text.indexOf(`${word} `) === 0) starts.add(0)
  for (let at = text.indexOf(`\n${word} `); at >= 0; at = text.indexOf(`\n${word} `, at + 1)) starts.add(at + 1)
  for (let at = text.indexOf(` ${word}:`); at >= 0; at = text.indexOf(` ${word}:`, at + 1))
    starts.add(text.lastIndexOf('\n', at) + 1)
  const m = new Map<string, number>()
  for (const start of [...starts].sort((a, b) => a - b)) {
    const end = text.indexOf('\n', start)
    const parts = lineOf(lexicon, start, end < 0 ? text.length : end).split(' ')
    for (const p of parts.slice(1)) {
      const at = p.lastIndexOf(':')
      const sim = Number(p.slice(at + 1))
      const neighbour = p.slice(0, at)
      if (parts[0] === word) link(m, neighbour, sim)
      if (neighbour === word) link(m, parts[0], sim)
    }
  }
  return [...m].sort(bySimilarity)
}

/**
 * The lexicon as it is searched. A Buffer answers indexOf and lastIndexOf with a string needle natively, over its
 * bytes, like a string does over its characters: UTF-8 needles match at the same lines either way, so scanLexicon gives
 * the same neighbours from both. Plain bytes without Buffer (a runtime without Node's APIs) are decoded once.
 */
export type LexiconText = string | (Uint8Array & { toString(encoding: 'utf8', start?: number, end?: number): string })

function lexiconTextOf(read: string | Uint8Array): LexiconText {
  if (typeof read === 'string') return read
  const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBuffer, at: number, length: number): LexiconText } })
    .Buffer
  if (NodeBuffer) return NodeBuffer.from(read.buffer as ArrayBuffer, read.byteOffset, read.byteLength)
  return new TextDecoder().decode(read)
}

function lineOf(text: LexiconText, start: number, end: number): string {
  return typeof text === 'string' ? text.slice(start, end) : text.toString('utf8', start, end)
}

function wholeText(text: LexiconText): string {
  return typeof text === 'string' ? text : text.toString('utf8')
}

function parseAll(): Map<string, Array<[string, number]>> {
  lexicon ??= parseLexicon(wholeText(lexiconText!))
  scanned.clear()
  return lexicon
}

function lookup(word: string): ReadonlyArray<[string, number]> | undefined {
  if (lexicon) return lexicon.get(word)
  let found = scanned.get(word)
  if (!found) {
    if (scanned.size >= LEXICON_SCAN_WORDS) return parseAll().get(word)
    scanned.set(word, (found = scanLexicon(lexiconText!, word)))
  }
  return found.length ? found : undefined
}

/** A word's neighbours in meaning, most similar first; the lexicon must be loaded (loadLexicon) first. */
export function neighboursOf(word: string): ReadonlyArray<[string, number]> {
  if (lexiconText === undefined)
    throw new Error("the offline embedder's lexicon is not loaded: await loadLexicon() first")
  // Plurals and third persons fall back to the stem the lexicon knows ("doctors" -> "doctor").
  return lookup(word) ?? (word.length > 3 && word.endsWith('s') ? lookup(word.slice(0, -1)) : undefined) ?? []
}

/** Words that carry no property on their own: kept short on purpose (negations stay in). */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been but by for from had has have he her his i if in into is it its me my of on or our ' +
    'she so than that the their them then there these they this those to us was we were what when where which who ' +
    'will with would you your about also can do does did just more most other some such only own same too very ' +
    'e g eg etc'
  ).split(' ')
)

// Symbols that say something about a text ("@" addresses, "$" prices, "<" markup) are tokens; other punctuation
// (quotes, brackets, stops, commas) is not, or every quoted label would resemble every other.
const WORD = /[\p{L}\p{N}]+|[@#$%&*+=<>/\\|~^\p{S}]/gu

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

/** The weighted features of one text, keyed by a prefixed feature name ('w:' word, 'c:' character n-gram). */
function features(text: string): Map<string, number> {
  const tf = new Map<string, number>()
  for (const tok of lexicalTokens(text)) if (!STOPWORDS.has(tok)) tf.set(tok, (tf.get(tok) ?? 0) + 1)
  const out = new Map<string, number>()
  const add = (f: string, w: number) => out.set(f, (out.get(f) ?? 0) + w)
  for (const [tok, n] of tf) {
    const scale = 1 + Math.log(n)
    add(`w:${tok}`, WORD_WEIGHT * scale)
    const w = `<${tok}>`
    const chars = [...w]
    for (let len = 3; len <= 5; len++) {
      for (let i = 0; i + len <= chars.length; i++) {
        const g = chars.slice(i, i + len).join('')
        if (g !== w) add(`c:${g}`, GRAM_WEIGHT * scale) // the whole wrapped word is already the word feature
      }
    }
    for (const [nb, sim] of neighboursOf(tok)) add(`w:${nb}`, NEIGHBOUR_WEIGHT * sim * scale)
  }
  return out
}

/**
 * Embed one text into `out` (length = dimensions), unit-normalized; an empty or all-stopword text stays zero. The
 * lexicon must be loaded (loadLexicon); OfflineEmbedder.embed does that.
 */
export function hashEmbed(text: string, out: Float32Array): void {
  out.fill(0)
  const dims = out.length
  for (const [f, weight] of features(text)) {
    const h = fnv1a(f)
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
    if (!(Number.isInteger(dimensions) && dimensions >= 16))
      throw new RangeError(`dimensions must be an integer >= 16, got ${dimensions}`)
    this.id = dimensions === OFFLINE_DIMENSIONS ? OFFLINE_EMBEDDER_ID : `${OFFLINE_EMBEDDER_ID}-${dimensions}`
  }

  async embed(texts: string[]): Promise<Float32Array> {
    await loadLexicon()
    if (texts.length >= FULL_PARSE_TEXTS) parseAll()
    const d = this.dimensions
    const out = new Float32Array(texts.length * d)
    for (let i = 0; i < texts.length; i++) hashEmbed(texts[i], out.subarray(i * d, (i + 1) * d))
    return out
  }
}
