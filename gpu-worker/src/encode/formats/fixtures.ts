/** @module Test-only writers of SAE files in their authors' on-disk formats (npy/npz zips, safetensors with BF16) and the encode harness. */
import assert from 'node:assert/strict'
import { crc32, deflateRawSync } from 'node:zlib'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { fromBfloat16Bits, fromHalfBits, toBfloat16Bits, toHalfBits } from '@latentbase/shared/tensor/float16'
import { writeSafetensors } from '@latentbase/shared/tensor/safetensors'
import { buildPooledGraph, buildTokenActivationsGraph } from '../fused-graph.ts'
import type { SaeWeights } from '../architectures/index.ts'
import { buildTinyReader, gaussian, referenceHidden, rng, type TinyReader } from '../test-fixtures.ts'
import {
  compareActivations,
  referenceEncode,
  type Comparison,
  type ReferenceSae,
  type ReferenceToken
} from '../architectures/reference.ts'

export type StoredDtype = 'F32' | 'F16' | 'BF16'

/** The value a float32 takes once stored as `dtype`, in float64. */
export function storedValues(dtype: StoredDtype, x: Float32Array): Float64Array {
  if (dtype === 'F16') return Float64Array.from(x, v => fromHalfBits(toHalfBits(v)))
  if (dtype === 'BF16') return Float64Array.from(x, v => fromBfloat16Bits(toBfloat16Bits(v)))
  return Float64Array.from(x)
}

function encodeAs(dtype: StoredDtype, data: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
  return new Uint8Array(Uint16Array.from(data, dtype === 'F16' ? toHalfBits : toBfloat16Bits).buffer)
}

/** A safetensors file as the Rust/Python writers lay it out (the shared writer: header padded to 8, tensors sorted). */
export function safetensorsFile(
  tensors: Record<string, { dtype: StoredDtype; shape: number[]; data: Float32Array }>,
  metadata?: Record<string, string>
): Uint8Array {
  return writeSafetensors(tensors, metadata)
}

/** A .npy file (format 1.0) as numpy writes it: header dict padded with spaces to a multiple of 64, then C-order data. */
export function npyFile(data: Float32Array, shape: number[], descr: '<f4' | '<f2' | '<f8' = '<f4'): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n'
  const body =
    descr === '<f4'
      ? encodeAs('F32', data)
      : descr === '<f2'
        ? encodeAs('F16', data)
        : new Uint8Array(Float64Array.from(data).buffer)
  const out = new Uint8Array(10 + header.length + body.byteLength)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  new DataView(out.buffer).setUint16(8, header.length, true)
  out.set(new TextEncoder().encode(header), 10)
  out.set(body, 10 + header.length)
  return out
}

/** A zip archive with each entry stored (np.savez) or deflated (np.savez_compressed). */
export function zipFile(entries: Array<{ name: string; data: Uint8Array }>, method: 0 | 8): Uint8Array {
  const parts: Uint8Array[] = []
  const central: Uint8Array[] = []
  let offset = 0
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name)
    const body = method === 8 ? new Uint8Array(deflateRawSync(e.data)) : e.data
    const crc = crc32(e.data) >>> 0
    const local = new Uint8Array(30 + name.length)
    const lv = new DataView(local.buffer)
    lv.setUint32(0, 0x04034b50, true)
    lv.setUint16(4, 20, true)
    lv.setUint16(8, method, true)
    lv.setUint32(14, crc, true)
    lv.setUint32(18, body.byteLength, true)
    lv.setUint32(22, e.data.byteLength, true)
    lv.setUint16(26, name.length, true)
    local.set(name, 30)
    const cd = new Uint8Array(46 + name.length)
    const cv = new DataView(cd.buffer)
    cv.setUint32(0, 0x02014b50, true)
    cv.setUint16(4, 20, true)
    cv.setUint16(6, 20, true)
    cv.setUint16(10, method, true)
    cv.setUint32(16, crc, true)
    cv.setUint32(20, body.byteLength, true)
    cv.setUint32(24, e.data.byteLength, true)
    cv.setUint16(28, name.length, true)
    cv.setUint32(42, offset, true)
    cd.set(name, 46)
    parts.push(local, body)
    central.push(cd)
    offset += local.byteLength + body.byteLength
  }
  const cdSize = central.reduce((a, c) => a + c.byteLength, 0)
  const eocd = new Uint8Array(22)
  const ev = new DataView(eocd.buffer)
  ev.setUint32(0, 0x06054b50, true)
  ev.setUint16(8, entries.length, true)
  ev.setUint16(10, entries.length, true)
  ev.setUint32(12, cdSize, true)
  ev.setUint32(16, offset, true)
  const all = [...parts, ...central, eocd]
  const out = new Uint8Array(all.reduce((a, p) => a + p.byteLength, 0))
  let at = 0
  for (const p of all) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** Random SAE parameters in the SAELens layout (float32, before any storage rounding). */
export interface RawSae {
  dIn: number
  dSae: number
  wEnc: Float32Array // [dIn, dSae]
  wDec: Float32Array // [dSae, dIn]
  bEnc: Float32Array
  bDec: Float32Array
  threshold: Float32Array
  rMag: Float32Array
  bMag: Float32Array
}

export function randomSae(dIn: number, dSae: number, seed: number): RawSae {
  const rand = rng(seed)
  return {
    dIn,
    dSae,
    wEnc: gaussian(rand, dIn * dSae, 1 / Math.sqrt(dIn)),
    wDec: gaussian(rand, dSae * dIn, 0.5),
    bEnc: gaussian(rand, dSae, 0.2),
    bDec: gaussian(rand, dIn, 0.3),
    threshold: Float32Array.from(gaussian(rand, dSae, 0.2), v => Math.abs(v) + 0.2),
    rMag: gaussian(rand, dSae, 0.3),
    bMag: gaussian(rand, dSae, 0.2)
  }
}

/** [rows, cols] -> [cols, rows]. */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]
  return out
}

/** The tiny reader's tokens the conformance tests encode: B documents of T tokens, no padding. */
export interface Harness {
  reader: TinyReader
  ids: number[][]
  /** [N][d] float64 hidden states (hidden_states.1) of every token, row-major over (doc, position). */
  hidden: Float64Array[]
}

export function harness(d: number, seed = 5): Harness {
  const vocab = 160
  const reader = buildTinyReader({ vocab, d, seed, unusedWidth: 8 })
  const rand = rng(seed + 1)
  const ids = Array.from({ length: 4 }, () => Array.from({ length: 20 }, () => 3 + Math.floor(rand() * (vocab - 3))))
  const hidden = ids.flat().map(id => referenceHidden(reader, 1, id, 1))
  return { reader, ids, hidden }
}

function feeds(h: Harness): Record<string, Tensor> {
  const B = h.ids.length
  const T = h.ids[0].length
  return {
    input_ids: new Tensor('int64', BigInt64Array.from(h.ids.flat(), BigInt), [B, T]),
    attention_mask: new Tensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]),
    pool_mask: new Tensor('float32', new Float32Array(B * T).fill(1), [B, T])
  }
}

async function run(bytes: Uint8Array, f: Record<string, Tensor>) {
  const session = await InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 })
  try {
    return await session.run(f)
  } finally {
    await session.release()
  }
}

/** Per-token activations [N, S] from the real fused graph (reader -> SAE) in onnxruntime. */
export async function graphTokenActivations(h: Harness, sae: SaeWeights): Promise<Float32Array> {
  const graph = buildTokenActivationsGraph(h.reader.bytes, sae, { output: 'hidden_states.1', outlierNormRatio: 1e6 })
  const out = await run(graph.bytes, feeds(h))
  return out.activations.data as Float32Array
}

/** Per-document pooled activations [B, S] (max or sum) from the real fused graph. */
export async function graphPooled(h: Harness, sae: SaeWeights, method: 'max' | 'sum'): Promise<Float32Array> {
  const graph = buildPooledGraph(h.reader.bytes, sae, { output: 'hidden_states.1', method, outlierNormRatio: 1e6 })
  const out = await run(graph.bytes, feeds(h))
  return out.pooled.data as Float32Array
}

export function referenceTokens(h: Harness, sae: ReferenceSae): ReferenceToken[] {
  return h.hidden.map(x => referenceEncode(sae, x))
}

export interface ConformanceReport {
  f32: Comparison
  quantized?: Comparison
}

/**
 * The conformance rule. Against the reference computed from the values as stored: within 1e-4 of each
 * latent's largest activation, pairs within 1e-4 of a decision boundary excluded and counted (at most 1%).
 * For F16 / BF16 also against the reference of the unrounded float32 weights: within 1e-2, pairs within 1e-2 of a
 * boundary excluded, and >= 99% agreement of the active set.
 */
export function assertConforms(
  label: string,
  got: Float32Array,
  stored: ReferenceToken[],
  dSae: number,
  unrounded?: ReferenceToken[]
): ConformanceReport {
  const f32 = compareActivations(got, stored, dSae, 1e-4)
  const total = stored.length * dSae
  assert.ok(f32.worst <= 1e-4, `${label}: worst relative error ${f32.worst.toExponential(2)} > 1e-4`)
  assert.ok(f32.excluded <= 0.01 * total, `${label}: ${f32.excluded} of ${total} pairs within epsilon of a boundary`)
  assert.ok(
    f32.activeEither >= 0.02 * total,
    `${label}: only ${f32.activeEither} active pairs: the comparison would mean little`
  )
  assert.ok(
    f32.activeDisagreement <= f32.excluded,
    `${label}: active sets differ on ${f32.activeDisagreement} pairs, more than the ${f32.excluded} near a boundary`
  )
  if (!unrounded) return { f32 }
  const quantized = compareActivations(got, unrounded, dSae, 1e-2)
  assert.ok(
    quantized.worst <= 1e-2,
    `${label}: worst relative error vs the unrounded weights ${quantized.worst.toExponential(2)} > 1e-2`
  )
  const agreement = 1 - quantized.activeDisagreement / Math.max(1, quantized.activeEither)
  assert.ok(
    agreement >= 0.99,
    `${label}: active-set agreement with the unrounded weights ${agreement.toFixed(4)} < 0.99`
  )
  return { f32, quantized }
}

/** Pooled max / sum per document against the reference tokens (pairs with a token near a boundary skipped). */
export function assertPooledConforms(
  label: string,
  got: Float32Array,
  ref: ReferenceToken[],
  docs: number,
  dSae: number,
  method: 'max' | 'sum'
): void {
  const perDoc = ref.length / docs
  const scale = new Float64Array(dSae).fill(1e-6)
  for (const t of ref) for (let s = 0; s < dSae; s++) scale[s] = Math.max(scale[s], t.acts[s])
  let checked = 0
  for (let b = 0; b < docs; b++) {
    for (let s = 0; s < dSae; s++) {
      let want = 0
      let near = false
      for (let t = b * perDoc; t < (b + 1) * perDoc; t++) {
        const v = ref[t].acts[s]
        want = method === 'max' ? Math.max(want, v) : want + v
        if (ref[t].margin[s] < 1e-4 * scale[s]) near = true
      }
      if (near) continue
      checked++
      const tol = 1e-4 * scale[s] * (method === 'sum' ? perDoc : 1)
      assert.ok(
        Math.abs(got[b * dSae + s] - want) <= tol,
        `${label}: doc ${b} latent ${s} ${method}: got ${got[b * dSae + s]}, reference ${want}`
      )
    }
  }
  assert.ok(checked >= 0.9 * docs * dSae, `${label}: only ${checked} pooled values checked`)
}
