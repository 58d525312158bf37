/** @module sha256Hex and the plain-JS SHA-256 (what Workers run) agree with node:crypto on every padding boundary and on large, non-ASCII input. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { sha256, sha256Hex, sha256HexAsync, toHex } from './sha256.ts'

test('sha256Hex matches node:crypto for lengths 0..200 (every padding case) and a 1 MB buffer', () => {
  for (let n = 0; n <= 200; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n * 7) & 255)
    const want = createHash('sha256').update(bytes).digest('hex')
    assert.equal(toHex(sha256(bytes)), want, `plain JS, length ${n}`)
    assert.equal(sha256Hex(bytes), want, `length ${n}`)
  }
  const big = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24)
  assert.equal(toHex(sha256(big)), createHash('sha256').update(big).digest('hex'))
  assert.equal(sha256Hex(big), createHash('sha256').update(big).digest('hex'))
})

test('strings are hashed as UTF-8', () => {
  const s = JSON.stringify(['café', null, '数据', 'x'.repeat(100)])
  assert.equal(sha256Hex(s), createHash('sha256').update(s).digest('hex'))
  assert.equal(toHex(sha256(s)), createHash('sha256').update(s).digest('hex'))
})

test('sha256HexAsync (Web Crypto) gives the same digests', async () => {
  const s = JSON.stringify(['café', '数据'])
  assert.equal(await sha256HexAsync(s), sha256Hex(s))
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255)
  assert.equal(await sha256HexAsync(bytes), createHash('sha256').update(bytes).digest('hex'))
})
