/** @module What reading a source yields: documents, and records left out with the reason. */
import type { ChatMessage } from '@latentbase/shared/contract/dataset'

/** One document read from a source. `row` is its position among the source's records (skipped ones included). */
export interface SourceDocument {
  id: string
  text?: string
  messages?: ChatMessage[]
  metadata: Record<string, unknown>
  row?: number
}

export type SkipReason =
  | 'invalid-json'
  | 'not-an-object'
  | 'missing-text-field'
  | 'text-not-a-string'
  | 'empty-text'
  | 'missing-messages-field'
  | 'bad-messages'

/** A record that was left out, and why (counted by the caller, never fatal). */
export interface SourceSkip {
  skip: SkipReason
  row: number
  detail?: string
}

export type SourceRecord = SourceDocument | SourceSkip

export function isSkip(r: SourceRecord | { skip: string }): r is SourceSkip {
  return 'skip' in r
}

/** A parsed record before field extraction (what each format reader yields). */
export type RawRecord = { row: number; value: unknown } | SourceSkip
