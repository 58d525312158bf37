/** @module Tests for length-bucketed batch planning and right-padded packing. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { packBatch, paddingFraction, planBatches, roundedBatchLength } from './batches.ts'

/** Deterministic pseudo-random lengths with a long tail, like real documents. */
function lengths(n: number, seed = 1): Int32Array {
  const out = new Int32Array(n)
  let s = seed
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0
    const u = s / 2 ** 32
    out[i] = Math.min(512, 2 + Math.floor(-Math.log(1 - u) * 120))
  }
  return out
}

describe('planBatches', () => {
  test('every index exactly once, within the token and size caps', () => {
    const l = lengths(700)
    const opts = { maxTokensPerBatch: 4096, maxBatchSize: 16 }
    const batches = planBatches(l, opts)
    const seen = new Uint8Array(l.length)
    for (const b of batches) {
      assert.ok(b.length >= 1 && b.length <= 16)
      let longest = 0
      for (const i of b) {
        seen[i]++
        longest = Math.max(longest, l[i])
      }
      assert.ok(b.length * longest <= 4096, `batch of ${b.length} x ${longest}`)
    }
    assert.ok(seen.every(c => c === 1))
  })

  test('far less padding than batching in source order', () => {
    const l = lengths(1024, 7)
    const batches = planBatches(l, { maxTokensPerBatch: 8192, maxBatchSize: 32 })
    const naive: Int32Array[] = []
    let at = 0
    for (const b of batches) {
      naive.push(Int32Array.from({ length: b.length }, (_, k) => at + k))
      at += b.length
    }
    const sorted = paddingFraction(l, batches)
    const unsorted = paddingFraction(l, naive)
    assert.ok(sorted < 0.1, `padding ${sorted}`)
    assert.ok(sorted < unsorted / 4, `sorted ${sorted} vs source order ${unsorted}`)
  })

  test('a sequence longer than the cap goes alone; empty input gives no batches', () => {
    const batches = planBatches(Int32Array.from([10, 5000, 12]), { maxTokensPerBatch: 1024 })
    assert.deepEqual(
      batches.map(b => Array.from(b)),
      [[1], [2, 0]]
    )
    assert.deepEqual(planBatches(new Int32Array(0)), [])
  })

  test('with a length cap, the rounded length is the one the token budget counts', () => {
    // 179 rounds to 180: 4 x 180 = 720 fits a 720 budget, 5 do not (the unrounded 5 x 179 = 895 would not either).
    const lengths = Int32Array.from([179, 179, 179, 179, 179])
    assert.deepEqual(
      planBatches(lengths, { maxTokensPerBatch: 720, lengthCap: 512 }).map(b => b.length),
      [4, 1]
    )
    assert.deepEqual(
      planBatches(Int32Array.from([179, 179, 179, 179]), { maxTokensPerBatch: 716 }).map(b => b.length),
      [4]
    )
    assert.deepEqual(
      planBatches(Int32Array.from([179, 179, 179, 179]), { maxTokensPerBatch: 716, lengthCap: 512 }).map(b => b.length),
      [3, 1],
      'rounded, four no longer fit'
    )
  })
})

describe('packBatch', () => {
  test('right padding with the pad id; attention and pool mask 0 on padding', () => {
    const a = { ids: Int32Array.from([1, 50, 51, 52]), poolMask: Uint8Array.from([0, 1, 1, 0]) }
    const b = { ids: Int32Array.from([1, 60]), poolMask: Uint8Array.from([0, 1]) }
    const p = packBatch([a, b], 2)
    assert.equal(p.batchSize, 2)
    assert.equal(p.seqLen, 4)
    assert.deepEqual(Array.from(p.ids, Number), [1, 50, 51, 52, 1, 60, 2, 2])
    assert.deepEqual(Array.from(p.attention), [1, 1, 1, 1, 1, 1, 0, 0])
    assert.deepEqual(Array.from(p.poolMask), [0, 1, 1, 0, 0, 1, 0, 0])
    assert.ok(p.ids instanceof BigInt64Array)
  })

  test('with a cap, the length rounds up to one with a divisor from 8 to 16, padding the extra columns', () => {
    const a = { ids: Int32Array.from({ length: 179 }, (_, i) => 10 + i), poolMask: new Uint8Array(179).fill(1) }
    const p = packBatch([a], 2, 512)
    assert.equal(p.seqLen, 180)
    assert.equal(p.ids[178], 188n)
    assert.equal(p.ids[179], 2n)
    assert.equal(p.attention[179], 0)
    assert.equal(p.poolMask[179], 0)
    assert.equal(packBatch([a], 2).seqLen, 179, 'no cap, no rounding')
  })
})

describe('roundedBatchLength', () => {
  test('the nearest length whose largest divisor up to 16 is at least 8, within 1/50 more and the cap', () => {
    assert.equal(roundedBatchLength(256, 512), 256, 'already good')
    assert.equal(roundedBatchLength(179, 512), 180, 'a prime: one token')
    assert.equal(roundedBatchLength(218, 512), 220, '2 x 109')
    assert.equal(roundedBatchLength(353, 512), 360, 'seven tokens are within 353 / 50')
    assert.equal(roundedBatchLength(145, 512), 145, '150 is 3.4% more: not worth it')
    assert.equal(roundedBatchLength(511, 512), 512)
    assert.equal(roundedBatchLength(509, 510), 510)
    assert.equal(roundedBatchLength(509, 509), 509, 'never past the cap')
    assert.equal(roundedBatchLength(7, 512), 7, 'short batches stay as they are')
    for (let t = 1; t <= 1024; t++) {
      const r = roundedBatchLength(t, 1024)
      assert.ok(r >= t && r - t <= t / 50, `${t} -> ${r}`)
    }
  })
})
