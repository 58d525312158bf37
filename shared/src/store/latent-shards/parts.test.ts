/** @module Tests of compressParts: parts read in key order (copied end to end) and out of order (scattered) give the counting sort's matrix. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compressParts, type LatentPart } from './parts.ts'

function part(entries: Array<[doc: number, latent: number]>): LatentPart {
  return {
    doc: Int32Array.from(entries, e => e[0]),
    latent: Int32Array.from(entries, e => e[1]),
    value: Float32Array.from(entries, e => e[0] + e[1] / 100),
    position: Int32Array.from(entries, e => e[0] * 10 + e[1])
  }
}

/** The matrix by sorting every entry on its key, ties in read order. */
function reference(parts: LatentPart[], major: 'doc' | 'latent', n: number, offset: number) {
  const minorKey = major === 'doc' ? 'latent' : 'doc'
  const all = parts.flatMap(p => Array.from(p[major], (key, k) => ({ key, p, k })))
  all.sort((x, y) => x.key - y.key)
  const indptr = new Int32Array(n + 1)
  for (const e of all) indptr[e.key - offset + 1]++
  for (let i = 0; i < n; i++) indptr[i + 1] += indptr[i]
  return {
    indptr,
    minor: Int32Array.from(all, e => e.p[minorKey][e.k]),
    values: Float32Array.from(all, e => e.p.value[e.k]),
    positions: Int32Array.from(all, e => e.p.position[e.k])
  }
}

test('compressParts: parts in key order and out of it, with empty parts and an offset, match the sort', () => {
  const inOrder = [
    part([
      [10, 3],
      [10, 7],
      [11, 1]
    ]),
    part([]),
    part([
      [11, 4],
      [13, 0]
    ]),
    part([[14, 2]])
  ]
  const outOfOrder = [inOrder[2], inOrder[0], inOrder[3]]
  for (const parts of [inOrder, outOfOrder, [inOrder[0]], []]) {
    const got = compressParts(parts, 'doc', 6, 10)
    assert.deepEqual(got, reference(parts, 'doc', 6, 10))
    // A single part is copied too: the result never views a part's arrays.
    if (parts.length) assert.notEqual(got.values.buffer, parts[0].value.buffer)
  }
  // By latent: these parts are out of latent order, so they are scattered.
  assert.deepEqual(compressParts(inOrder, 'latent', 8), reference(inOrder, 'latent', 8, 0))
})
