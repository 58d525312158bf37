/** @module Tests of the .npy / .npz reader against files written by numpy itself, and its refusals. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseNpy, parseNpz } from './npy.ts'
import { tensorToFloat32 } from './safetensors.ts'

const NUMPY_FILES: Record<string, string> = {
  stored:
    'UEsDBC0AAAAAAAAAIQBLSmgB//////////8JABQAV19lbmMubnB5AQAQAJgAAAAAAAAAmAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgAAgL8AAAC/AAAAAAAAAD8AAIA/AADAP1BLAwQtAAAAAAAAACEAqdsV4P//////////CQAUAGJfZW5jLm5weQEAEACGAAAAAAAAAIYAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPoDAAEJQSwMELQAAAAAAAAAhAOiCKEr//////////w0AFAB0aHJlc2hvbGQubnB5AQAQAJAAAAAAAAAAkAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMSwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgClnz+MIfbqUBAAAAAAAABEBQSwECLQMtAAAAAAAAACEAS0poAZgAAACYAAAACQAAAAAAAAAAAAAAgAEAAAAAV19lbmMubnB5UEsBAi0DLQAAAAAAAAAhAKnbFeCGAAAAhgAAAAkAAAAAAAAAAAAAAIAB0wAAAGJfZW5jLm5weVBLAQItAy0AAAAAAAAAIQDogihKkAAAAJAAAAANAAAAAAAAAAAAAACAAZQBAAB0aHJlc2hvbGQubnB5UEsFBgAAAAADAAMAqQAAAGMCAAAAAA==',
  deflated:
    'UEsDBC0AAAAIAAAAIQBLSmgB//////////8JABQAV19lbmMubnB5AQAQAJgAAAAAAAAAVwAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2airqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RpGOgrGmjoKtQpkAy4Ghob9DAwMIAwC9kA+EB+wBwBQSwMELQAAAAgAAAAhAKnbFeD//////////wkAFABiX2VuYy5ucHkBABAAhgAAAAAAAABKAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqSuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GsY6mjoKtQoUAC4Gu4YDDE4AUEsDBC0AAAAIAAAAIQDogihK//////////8NABQAdGhyZXNob2xkLm5weQEAEACQAAAAAAAAAFMAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNmoa6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkahjoKRpo6CrUKZAOuyM8/DsnnLWVkAAMWBwBQSwECLQMtAAAACAAAACEAS0poAVcAAACYAAAACQAAAAAAAAAAAAAAgAEAAAAAV19lbmMubnB5UEsBAi0DLQAAAAgAAAAhAKnbFeBKAAAAhgAAAAkAAAAAAAAAAAAAAIABkgAAAGJfZW5jLm5weVBLAQItAy0AAAAIAAAAIQDogihKUwAAAJAAAAANAAAAAAAAAAAAAACAARcBAAB0aHJlc2hvbGQubnB5UEsFBgAAAAADAAMAqQAAAKkBAAAAAA==',
  v1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8=',
  v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8=',
  v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8=',
  big: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAq/gAAAvwAAAAAAAAA/AAAAP4AAAD/AAAA=',
  fortran:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAPwAAAL8AAIA/AAAAAAAAwD8=',
  object:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMSwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqABJWSAAAAAAAAAIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwGFlGgDjAVkdHlwZZSTlIwCTziUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LP3SUYoldlH2UjAF4lEsBc2F0lGIu',
  scalar:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAOhA',
  structured:
    'k05VTVBZAQB2AHsnZGVzY3InOiBbKCdhJywgJzxmNCcpLCAoJ2InLCAnPGk0JyldLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAA'
}

const file = (name: string) => new Uint8Array(Buffer.from(NUMPY_FILES[name], 'base64'))
// The arrays numpy was given: a = arange(6).reshape(2, 3) * 0.5 - 1 (f4), b (f2), c (f8).
const A = [-1, -0.5, 0, 0.5, 1, 1.5]

test('np.savez (stored) and np.savez_compressed (deflated) archives give every array with dtype and shape', () => {
  for (const name of ['stored', 'deflated']) {
    const npz = parseNpz(file(name), `${name}.npz`)
    assert.deepEqual([...npz.keys()].sort(), ['W_enc', 'b_enc', 'threshold'])
    const w = npz.get('W_enc')!
    assert.equal(w.dtype, 'F32')
    assert.deepEqual(w.shape, [2, 3])
    assert.deepEqual([...tensorToFloat32(w)], A)
    const b = npz.get('b_enc')!
    assert.equal(b.dtype, 'F16')
    assert.deepEqual([...tensorToFloat32(b)], [1.5, -2.25, 3])
    const c = npz.get('threshold')!
    assert.equal(c.dtype, 'F64')
    assert.deepEqual(c.shape, [1, 2])
    const c64 = new Float64Array(c.bytes.slice().buffer)
    assert.deepEqual([...c64], [1e-300, 2.5])
  }
})

test('npy format versions 1, 2 and 3, a 0-d array and a big-endian array', () => {
  for (const v of ['v1', 'v2', 'v3', 'big']) {
    const a = parseNpy(file(v), v)
    assert.deepEqual(a.shape, [2, 3], v)
    assert.deepEqual([...tensorToFloat32(a)], A, v)
  }
  const s = parseNpy(file('scalar'))
  assert.deepEqual(s.shape, [])
  assert.deepEqual([...tensorToFloat32(s)], [7.25])
})

test('Fortran order, object and structured arrays are refused with a reason', () => {
  assert.throws(() => parseNpy(file('fortran'), 'W.npy'), /W\.npy: fortran_order arrays are not supported/)
  assert.throws(() => parseNpy(file('object'), 'o.npy'), /o\.npy: object arrays .* cannot be read/)
  assert.throws(() => parseNpy(file('structured'), 's.npy'), /structured arrays/)
  assert.throws(() => parseNpy(new TextEncoder().encode('not numpy at all'), 'x.npy'), /x\.npy: not a \.npy file/)
})

test('a truncated or corrupted archive fails instead of giving wrong numbers', () => {
  const stored = file('stored')
  assert.throws(() => parseNpz(stored.subarray(0, stored.length - 40), 'p.npz'), /p\.npz: not a zip archive/)
  const corrupt = stored.slice()
  // Flip one byte of W_enc's data (the first entry's payload ends just before the second local header).
  const second = Buffer.from(corrupt).indexOf(Buffer.from('PK\x03\x04', 'latin1'), 4)
  corrupt[second - 1] ^= 0xff
  assert.throws(() => parseNpz(corrupt, 'p.npz'), /p\.npz: W_enc\.npy: CRC mismatch/)
  const npy = file('v1')
  assert.throws(() => parseNpy(npy.subarray(0, npy.length - 4), 'w.npy'), /needs 24 bytes, file has 20/)
})
