/** @module CSV and TSV sources through csv-parse: the delimiter guessed from the header line, a header row naming the fields. */
import { Readable } from 'node:stream'
import { parse as parseCsv, CsvError } from 'csv-parse'
import { SourceError, type StreamedSource } from '../open-source.ts'
import type { RawRecord } from '../source-record.ts'
import { decodeText, tooLarge } from './text-stream.ts'

/** The delimiter of a header line: a tab or semicolon when they split it more than commas do. */
export function guessDelimiter(headerLine: string, url: string): string {
  if (/\.tsv(\.gz)?(\?|#|$)/i.test(url)) return '\t'
  const count = (d: string) => headerLine.split(d).length - 1
  const best = [',', '\t', ';'].map(d => [d, count(d)] as const).sort((a, b) => b[1] - a[1])[0]
  return best[1] > 0 ? best[0] : ','
}

export async function* csvRecords(source: StreamedSource, url: string, maxChars: number): AsyncGenerator<RawRecord> {
  const strings = decodeText(source.chunks)[Symbol.asyncIterator]()
  let head = ''
  const buffered: string[] = []
  while (!head.includes('\n')) {
    const r = await strings.next()
    if (r.done) break
    buffered.push(r.value)
    head += r.value
    if (head.length > 1 << 20) break
  }
  const delimiter = guessDelimiter(head.split('\n', 1)[0], url)
  const input = Readable.from(
    (async function* () {
      yield* buffered
      for (;;) {
        const r = await strings.next()
        if (r.done) return
        yield r.value
      }
    })(),
    { objectMode: false }
  )
  const parser = parseCsv({
    columns: (header: string[]) => header.map(h => h.trim()),
    bom: true,
    delimiter,
    skip_empty_lines: true,
    relax_column_count: true,
    // Quotes inside unquoted cells (JSON in a TSV) are data, not an error.
    relax_quotes: true,
    max_record_size: maxChars
  })
  input.on('error', err => parser.destroy(err))
  input.pipe(parser)
  let row = 0
  try {
    for await (const record of parser) yield { row: row++, value: record as Record<string, string> }
  } catch (err) {
    if (err instanceof CsvError) {
      if (err.code === 'CSV_MAX_RECORD_SIZE') throw tooLarge(source.name, maxChars)
      throw new SourceError('bad-format', `${source.name} is not valid CSV: ${err.message}`, { cause: err })
    }
    throw err
  } finally {
    input.destroy()
    parser.destroy()
  }
}
