/** @module JSON sources: a top-level array, or concatenated top-level values, split value by value without holding the whole file. */
import { SourceError, type StreamedSource } from '../open-source.ts'
import type { RawRecord } from '../source-record.ts'
import { DEFAULT_MAX_RECORD_CHARS, decodeText, tooLarge } from './text-stream.ts'

/**
 * Splits a stream of JSON text into its top-level values without holding more than one value:
 * the elements of a top-level array, or a run of concatenated top-level values (one object per
 * file, pretty-printed objects one after another). It tracks only nesting depth, strings and
 * escapes; each value's text goes to JSON.parse.
 */
export class JsonValueSplitter {
  private mode: 'start' | 'array' | 'sequence' | 'done' = 'start'
  private inValue = false
  private depth = 0
  private inString = false
  private escape = false
  private scalar = false
  private parts: string[] = []
  private partsLength = 0
  constructor(
    private readonly maxChars = DEFAULT_MAX_RECORD_CHARS,
    private readonly name = 'the source'
  ) {}

  /** Feeds the next piece of text; returns the values completed by it. */
  push(chunk: string): string[] {
    const out: string[] = []
    let start = this.inValue ? 0 : -1
    const n = chunk.length
    for (let i = 0; i < n; i++) {
      const c = chunk.charCodeAt(i)
      if (this.inValue) {
        if (this.inString) {
          if (this.escape) this.escape = false
          else if (c === 92 /* \ */) this.escape = true
          else if (c === 34 /* " */) {
            this.inString = false
            if (this.depth === 0) {
              out.push(this.take(chunk, start, i + 1))
              start = -1
            }
          }
          continue
        }
        if (this.scalar) {
          if (c === 44 || c === 93 || c === 125 || c === 32 || c === 10 || c === 13 || c === 9) {
            out.push(this.take(chunk, start, i))
            start = -1
            i-- // the terminator is read again outside the value
          }
          continue
        }
        if (c === 34) this.inString = true
        else if (c === 123 || c === 91) this.depth++
        else if (c === 125 || c === 93) {
          this.depth--
          if (this.depth === 0) {
            out.push(this.take(chunk, start, i + 1))
            start = -1
          }
        }
        continue
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) continue
      if (this.mode === 'start') {
        if (c === 91 /* [ */) {
          this.mode = 'array'
          continue
        }
        this.mode = 'sequence'
      } else if (this.mode === 'done') {
        throw new SourceError(
          'bad-format',
          `${this.name}: unexpected content after the end of the top-level JSON array`
        )
      } else if (c === 44 /* , */) {
        continue
      } else if (c === 93 /* ] */) {
        if (this.mode === 'array') {
          this.mode = 'done'
          continue
        }
        throw new SourceError('bad-format', `${this.name} is not valid JSON: an unexpected "]"`)
      }
      this.inValue = true
      start = i
      this.depth = 0
      this.scalar = false
      if (c === 123 || c === 91) this.depth = 1
      else if (c === 34) this.inString = true
      else if (c === 125) throw new SourceError('bad-format', `${this.name} is not valid JSON: an unexpected "}"`)
      else this.scalar = true
    }
    if (this.inValue && start !== -1) {
      const piece = chunk.slice(start)
      this.parts.push(piece)
      this.partsLength += piece.length
      if (this.partsLength > this.maxChars) throw tooLarge(this.name, this.maxChars)
    }
    return out
  }

  /** Ends the text; returns a trailing bare scalar, or throws when the text stops inside a value or array. */
  end(): string[] {
    if (this.inValue) {
      if (this.scalar) {
        const v = this.parts.join('')
        this.parts = []
        this.partsLength = 0
        this.inValue = false
        return [v]
      }
      throw new SourceError(
        'bad-format',
        `${this.name} ends inside a JSON value: the file is truncated or not valid JSON`
      )
    }
    if (this.mode === 'array')
      throw new SourceError(
        'bad-format',
        `${this.name} ends before its top-level JSON array is closed: the file is truncated`
      )
    return []
  }

  private take(chunk: string, start: number, end: number): string {
    this.inValue = false
    const tail = chunk.slice(Math.max(start, 0), end)
    if (this.parts.length === 0) return tail
    const v = this.parts.join('') + tail
    this.parts = []
    this.partsLength = 0
    return v
  }
}

export async function* jsonRecords(source: StreamedSource, maxChars: number): AsyncGenerator<RawRecord> {
  const splitter = new JsonValueSplitter(maxChars, source.name)
  let row = 0
  const parse = function* (texts: string[]): Generator<RawRecord> {
    for (const text of texts) {
      try {
        yield { row: row++, value: JSON.parse(text) }
      } catch (err) {
        yield { skip: 'invalid-json', row: row++, detail: (err as Error).message }
      }
    }
  }
  for await (const s of decodeText(source.chunks)) yield* parse(splitter.push(s))
  yield* parse(splitter.end())
}
