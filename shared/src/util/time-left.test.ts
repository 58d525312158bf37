/** @module Tests of the time left: the rate since the first observation, and nothing until there is one. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { timeLeft } from './time-left.ts'

test('the time left comes from the rate since the first observation, in s, min or h', () => {
  const first = { at: 0, done: 100 }
  assert.equal(timeLeft(first, 400, 1000, 30_000), 'about 60 s left', '300 in 30 s, 600 to go')
  assert.equal(timeLeft(first, 550, 1000, 90_000), 'about 2 min left')
  assert.equal(timeLeft(first, 200, 100_000, 60_000), 'about 16.6 h left')
  assert.equal(timeLeft(first, 1000, 1000, 30_000), '', 'done')
})

test('nothing until there is a rate: too soon, no progress since, no total, no first observation', () => {
  const first = { at: 0, done: 100 }
  assert.equal(timeLeft(first, 400, 1000, 1000), '')
  assert.equal(timeLeft(first, 100, 1000, 30_000), '')
  assert.equal(timeLeft(first, 400, null, 30_000), '')
  assert.equal(timeLeft(null, 400, 1000, 30_000), '')
})
