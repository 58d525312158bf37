/** @module Plain-text sources: one document per file, per line or per blank-line-separated paragraph (textUnit). */
import type { SourceSpec } from '@latentbase/shared/contract/dataset'
import type { StreamedSource } from '../open-source.ts'
import type { RawRecord } from '../source-record.ts'
import { decodeText, splitLines, tooLarge } from './text-stream.ts'

export async function* textRecords(
  source: StreamedSource,
  unit: SourceSpec['textUnit'],
  textField: string,
  maxChars: number
): AsyncGenerator<RawRecord> {
  let row = 0
  const doc = (text: string): RawRecord => ({ row: row++, value: { [textField]: text } })
  if (unit === 'file') {
    const parts: string[] = []
    let length = 0
    for await (const s of decodeText(source.chunks)) {
      parts.push(s)
      length += s.length
      if (length > maxChars) throw tooLarge(source.name, maxChars)
    }
    const text = parts.join('')
    if (text.trim()) yield doc(text)
    return
  }
  const lines = splitLines(decodeText(source.chunks), maxChars, source.name)
  if (unit === 'line') {
    for await (const line of lines) if (line.trim()) yield doc(line)
    return
  }
  let paragraph: string[] = []
  let length = 0
  for await (const line of lines) {
    if (line.trim() === '') {
      if (paragraph.length) {
        yield doc(paragraph.join('\n'))
        paragraph = []
        length = 0
      }
      continue
    }
    paragraph.push(line)
    length += line.length + 1
    if (length > maxChars) throw tooLarge(source.name, maxChars)
  }
  if (paragraph.length) yield doc(paragraph.join('\n'))
}
