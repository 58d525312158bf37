/** @module Bulk dtype conversions for weight tensors. */
import { fromBfloat16Bits } from './float16.ts'

export function bfloat16ToFloat32Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  const asInt = new Uint32Array(out.buffer)
  for (let i = 0; i < bits.length; i++) asInt[i] = bits[i] << 16
  return out
}

export { fromBfloat16Bits }
