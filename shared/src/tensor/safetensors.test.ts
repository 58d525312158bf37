/** @module Tests for safetensors read/write and half-precision conversions. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSafetensors, tensorToFloat32, writeSafetensors } from './safetensors.ts'
import { fromHalfBits, toHalfBits, toBfloat16Bits, fromBfloat16Bits } from './float16.ts'

test('float16 round trip is exact for representable values and rounds to nearest', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8])
    assert.equal(fromHalfBits(toHalfBits(v)), v)
  assert.equal(fromHalfBits(toHalfBits(1 + 2 ** -11)), 1) // tie rounds to even
  assert.equal(fromHalfBits(toHalfBits(1e6)), Infinity)
  assert.ok(Math.abs(fromHalfBits(toHalfBits(0.1)) - 0.1) < 1e-4)
})

test('bfloat16 keeps the float32 exponent', () => {
  assert.equal(fromBfloat16Bits(toBfloat16Bits(3.0e38)) > 2.9e38, true)
  assert.equal(fromBfloat16Bits(toBfloat16Bits(1.5)), 1.5)
})

test('safetensors write then parse gives the same tensors in F32 and F16', () => {
  const a = Float32Array.from([1, -2.5, 3.25, 0])
  const b = Float32Array.from([0.1, 0.2, 0.3])
  const file = writeSafetensors(
    { W: { dtype: 'F32', shape: [2, 2], data: a }, b: { dtype: 'F16', shape: [3], data: b } },
    { format: 'pt' }
  )
  const parsed = parseSafetensors(file)
  assert.deepEqual(parsed.metadata, { format: 'pt' })
  assert.deepEqual([...tensorToFloat32(parsed.tensors.get('W')!)], [...a])
  const half = tensorToFloat32(parsed.tensors.get('b')!)
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(half[i] - b[i]) < 1e-3)
  assert.equal(parsed.tensors.get('b')!.dtype, 'F16')
})

test('a truncated safetensors file fails with a clear message', () => {
  const file = writeSafetensors({ W: { dtype: 'F32', shape: [4], data: new Float32Array(4) } })
  assert.throws(() => parseSafetensors(file.subarray(0, file.byteLength - 4)), /past the end of the file/)
})
