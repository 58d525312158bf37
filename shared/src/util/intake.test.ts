/** @module Tests of the intake summary: reasons that skipped nothing are left out, the rest summed. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { intakeOf } from './intake.ts'

test('skipped records are summed over the reasons that skipped any; truncated passes through', () => {
  assert.deepEqual(intakeOf({ skipped: { 'empty-text': 2, 'bad-json': 0, 'not-sampled': 3 }, truncated: 1 }), {
    skipped: 5,
    reasons: [
      ['empty-text', 2],
      ['not-sampled', 3]
    ],
    truncated: 1
  })
  assert.deepEqual(intakeOf({ skipped: {}, truncated: 0 }), { skipped: 0, reasons: [], truncated: 0 })
})
