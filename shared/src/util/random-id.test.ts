/** @module Tests of random resource ids: prefix, length, alphabet, and no repeats in many draws. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ResourceId } from '../contract/id.ts'
import { randomId } from './random-id.ts'

test('ids have the prefix, the length, only the 32 symbols, are valid resource ids, and do not repeat', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 20_000; i++) {
    const id = randomId('ds_', 12)
    assert.match(id, /^ds_[a-km-np-z2-9]{12}$/)
    seen.add(id)
  }
  assert.equal(seen.size, 20_000)
  assert.ok(ResourceId.safeParse(randomId('aj_', 14)).success)
  // Every symbol shows up: the 5 low bits of a random byte are uniform.
  assert.equal(new Set([...seen].flatMap(id => [...id.slice('ds_'.length)])).size, 32)
})
