/** @module Random resource ids (datasets, analysis jobs, uploads): a prefix and crypto-random, URL-safe characters that are valid store key segments. */

/** Lower-case letters and digits without the look-alikes (l, o, 0, 1): 32 symbols, 5 bits each. */
const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'

/** `prefix` followed by `length` symbols (5 random bits each: 12 give 60 bits). */
export function randomId(prefix: string, length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length))
  let id = prefix
  for (const b of bytes) id += ALPHABET[b & 31]
  return id
}
