/** @module JSON Lines sources: one record per line, a line that does not parse is skipped with its reason. */
import type { StreamedSource } from '../open-source.ts'
import type { RawRecord } from '../source-record.ts'
import { decodeText, splitLines } from './text-stream.ts'

export async function* jsonlRecords(source: StreamedSource, maxChars: number): AsyncGenerator<RawRecord> {
  let row = 0
  for await (const line of splitLines(decodeText(source.chunks), maxChars, source.name)) {
    if (line.trim() === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (err) {
      yield { skip: 'invalid-json', row: row++, detail: (err as Error).message }
      continue
    }
    yield { row: row++, value }
  }
}
