/** @module Tests for drift detection: a latent whose frequency jumps between batches is named with its interval and q-value; equal batches name none; watched latents narrow the family. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { detectDrift } from './drift.ts'

const side = (id: string, documents: number, counts: number[]) => ({ id, documents, counts: Int32Array.from(counts) })
const labels = ['zero', 'one', 'two', 'three']

test('a latent that moved is named with a 95% interval and a q-value; the steady ones are not', () => {
  const out = detectDrift({
    batch: side('v2', 200, [100, 20, 50, 0]),
    baseline: side('v1', 200, [20, 20, 52, 0]),
    watch: { minDifference: 0.1, maxQValue: 0.05 },
    labels
  })
  assert.equal(out.tested, 3) // latent 3 is absent from both: not tested
  assert.deepEqual(
    out.moved.map(l => l.latent),
    [0]
  )
  const [m] = out.moved
  assert.equal(m.label, 'zero')
  assert.equal(m.difference, 0.4)
  assert.ok(m.ci95[0] > 0.3 && m.ci95[1] < 0.5, `interval ${m.ci95}`)
  assert.ok(m.qValue! < 1e-6)
})

test('a latent that fell is named too (both directions); equal batches name none', () => {
  const fell = detectDrift({
    batch: side('v2', 100, [0, 5]),
    baseline: side('v1', 100, [40, 5]),
    watch: { minDifference: 0.05, maxQValue: 0.05 },
    labels
  })
  assert.deepEqual(
    fell.moved.map(l => [l.latent, l.difference]),
    [[0, -0.4]]
  )
  const none = detectDrift({
    batch: side('v2', 100, [40, 5]),
    baseline: side('v1', 100, [40, 5]),
    watch: { minDifference: 0, maxQValue: 0.05 },
    labels
  })
  assert.deepEqual(none.moved, [])
})

test('watched latents: only they are tested, and reported under their own ids', () => {
  const out = detectDrift({
    batch: side('v2', 200, [100, 20, 120, 0]),
    baseline: side('v1', 200, [20, 20, 20, 0]),
    watch: { latents: [2, 1], minDifference: 0.1, maxQValue: 0.05 },
    labels
  })
  assert.equal(out.tested, 2)
  assert.deepEqual(
    out.moved.map(l => [l.latent, l.label]),
    [[2, 'two']]
  )
})
