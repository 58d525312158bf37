/** @module Text from a byte stream, as the line- and text-based formats read it: UTF-8 across chunk boundaries, lines, a record-size limit. */
import { SourceError } from '../open-source.ts'

/** Largest single record, in characters, unless the caller says otherwise. */
export const DEFAULT_MAX_RECORD_CHARS = 64 * 2 ** 20

/** UTF-8 decoding across chunk boundaries, with a leading byte-order mark dropped. */
export async function* decodeText(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8')
  let first = true
  for await (const chunk of chunks) {
    let s = decoder.decode(chunk, { stream: true })
    if (first && s.length) {
      s = s.replace(/^\uFEFF/, '')
      first = false
    }
    if (s) yield s
  }
  const rest = decoder.decode()
  if (rest) yield rest
}

/** Lines without their terminators ('\n' or '\r\n'); the last line may lack a newline. */
export async function* splitLines(
  strings: AsyncIterable<string>,
  maxChars: number,
  name: string
): AsyncGenerator<string> {
  let carry = ''
  for await (const s of strings) {
    let start = 0
    let nl = s.indexOf('\n')
    while (nl !== -1) {
      let line = carry ? carry + s.slice(start, nl) : s.slice(start, nl)
      carry = ''
      if (line.endsWith('\r')) line = line.slice(0, -1)
      yield line
      start = nl + 1
      nl = s.indexOf('\n', start)
    }
    carry += s.slice(start)
    if (carry.length > maxChars) throw tooLarge(name, maxChars)
  }
  if (carry) yield carry.endsWith('\r') ? carry.slice(0, -1) : carry
}

export function tooLarge(name: string, maxChars: number): SourceError {
  return new SourceError(
    'too-large',
    `${name} has a record longer than ${maxChars.toLocaleString('en-US')} characters; split it into smaller documents`
  )
}
