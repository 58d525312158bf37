/** @module Loads an SAELens SAE folder (cfg.json + sae_weights.safetensors) into the one internal SAE form. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseSafetensors, tensorToFloat32, type Safetensors, type TensorEntry } from '@latentbase/shared/tensor/safetensors'

export type SaeArchitecture = 'standard' | 'topk' | 'jumprelu'
export type SaeInputNormalization = 'none' | 'constant_norm_rescale' | 'layer_norm'

/** Every SAE format is translated into this; architectures differ only in the encode step. */
export interface SaeWeights {
  architecture: SaeArchitecture
  dIn: number
  dSae: number
  /** topk only. */
  k?: number
  /** [dIn * dSae], row-major dIn x dSae (x W_enc). */
  wEnc: Float32Array
  bEnc: Float32Array
  bDec: Float32Array
  /** jumprelu only: [dSae]. */
  threshold?: Float32Array
  applyBDecToInput: boolean
  normalizeActivations: SaeInputNormalization
  rescaleActsByDecoderNorm: boolean
  /** [dSae] L2 norms of the W_dec rows; present when rescaleActsByDecoderNorm. */
  decoderNorms?: Float32Array
  hookName: string
  contextSize?: number
  prependBos?: boolean
  /** dtype of the stored weights (e.g. "F16"), for reporting. */
  sourceDtype: string
}

export const SAE_CFG_FILE = 'cfg.json'
export const SAE_WEIGHTS_FILE = 'sae_weights.safetensors'

type Json = Record<string, unknown>

/** Read an SAELens folder from disk. */
export async function loadSaeLens(folder: string): Promise<SaeWeights> {
  const cfgPath = join(folder, SAE_CFG_FILE)
  const weightsPath = join(folder, SAE_WEIGHTS_FILE)
  const cfgText = await readFile(cfgPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${cfgPath}: cannot be read (${err.code ?? err.message})`)
  })
  let cfg: unknown
  try { cfg = JSON.parse(cfgText) } catch (err) { throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`) }
  const bytes = await readFile(weightsPath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${weightsPath}: cannot be read (${err.code ?? err.message})`)
  })
  let tensors: Safetensors
  try { tensors = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) } catch (err) {
    throw new Error(`${SAE_WEIGHTS_FILE}: ${(err as Error).message}`)
  }
  return saeFromSaeLens(cfg, tensors)
}

/** Translate a parsed cfg.json (v6 nested `metadata`, or the older flat form) and its tensors. */
export function saeFromSaeLens(cfgRaw: unknown, st: Safetensors): SaeWeights {
  if (typeof cfgRaw !== 'object' || cfgRaw === null || Array.isArray(cfgRaw)) throw new Error(`${SAE_CFG_FILE}: not a JSON object`)
  const cfg = cfgRaw as Json
  const meta = (typeof cfg.metadata === 'object' && cfg.metadata !== null ? cfg.metadata : {}) as Json
  const fail = (msg: string): never => { throw new Error(`${SAE_CFG_FILE}: ${msg}`) }

  const int = (name: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`${name} must be a positive integer, got ${JSON.stringify(v)}`)
    return v as number
  }
  const bool = (name: string, v: unknown, dflt: boolean): boolean => {
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'boolean') fail(`${name} must be true or false, got ${JSON.stringify(v)}`)
    return v as boolean
  }
  const dIn = int('d_in', cfg.d_in)
  const dSae = int('d_sae', cfg.d_sae)

  // Before v6 the activation lived in activation_fn_str (+ kwargs) and architecture could be absent.
  const activationFn = (cfg.activation_fn_str ?? cfg.activation_fn) as unknown
  let architecture: string
  if (cfg.architecture !== undefined && cfg.architecture !== null) {
    if (typeof cfg.architecture !== 'string') fail(`architecture must be a string, got ${JSON.stringify(cfg.architecture)}`)
    architecture = cfg.architecture as string
    if (architecture === 'standard' && activationFn === 'topk') architecture = 'topk'
  } else {
    architecture = activationFn === 'topk' ? 'topk' : 'standard'
  }
  if (architecture === 'gated') fail('architecture "gated" is not supported yet (standard, topk and jumprelu are)')
  if (architecture !== 'standard' && architecture !== 'topk' && architecture !== 'jumprelu') {
    fail(`architecture "${architecture}" is not supported (standard, topk, jumprelu)`)
  }
  if (architecture === 'standard' && activationFn !== undefined && activationFn !== null && activationFn !== 'relu') {
    fail(`activation_fn_str "${String(activationFn)}" is not supported for a standard SAE (relu, topk)`)
  }
  let k: number | undefined
  if (architecture === 'topk') {
    const kwargs = (typeof cfg.activation_fn_kwargs === 'object' && cfg.activation_fn_kwargs !== null ? cfg.activation_fn_kwargs : {}) as Json
    const rawK = cfg.k ?? kwargs.k
    if (rawK === undefined) fail('k is missing for a topk SAE (expected "k" or "activation_fn_kwargs.k")')
    k = int('k', rawK)
    if (k > dSae) fail(`k is ${k} but d_sae is only ${dSae}`)
  }

  const normRaw = cfg.normalize_activations ?? 'none'
  let normalizeActivations: SaeInputNormalization
  switch (normRaw) {
    case 'none': case 'expected_average_only_in': normalizeActivations = 'none'; break // folded into the weights at save time
    case 'constant_norm_rescale': normalizeActivations = 'constant_norm_rescale'; break
    case 'layer_norm': normalizeActivations = 'layer_norm'; break
    default: return fail(`normalize_activations "${String(normRaw)}" is not supported (none, expected_average_only_in, constant_norm_rescale, layer_norm)`)
  }
  const applyBDecToInput = bool('apply_b_dec_to_input', cfg.apply_b_dec_to_input, true)
  const rescaleActsByDecoderNorm = bool('rescale_acts_by_decoder_norm', cfg.rescale_acts_by_decoder_norm, false)

  const hookName = meta.hook_name ?? cfg.hook_name ?? cfg.hook_point
  if (typeof hookName !== 'string' || hookName.length === 0) fail('metadata.hook_name (or hook_name / hook_point in older configs) is missing')
  const contextRaw = meta.context_size ?? cfg.context_size
  const contextSize = contextRaw === undefined || contextRaw === null ? undefined : int('metadata.context_size', contextRaw)
  const bosRaw = meta.prepend_bos ?? cfg.prepend_bos
  const prependBos = bosRaw === undefined || bosRaw === null ? undefined : bool('metadata.prepend_bos', bosRaw, true)

  // Tensors: shapes are checked against the config so that a mismatched pair fails here, not in the graph.
  const dims: Record<string, number> = { d_in: dIn, d_sae: dSae }
  const tensor = (name: string, fields: string[]): TensorEntry => {
    const t = st.tensors.get(name)
    if (!t) return fail(`${SAE_WEIGHTS_FILE} has no tensor "${name}" (has: ${[...st.tensors.keys()].join(', ') || 'none'})`)
    const shape = fields.map((f) => dims[f])
    const got = t.shape
    if (got.length !== shape.length) fail(`${name} has shape [${got.join(', ')}], expected [${fields.join(', ')}] = [${shape.join(', ')}]`)
    const wrong = fields.filter((f, i) => got[i] !== dims[f])
    if (wrong.length) fail(`${wrong.map((f) => `${f} is ${dims[f]}`).join(' and ')} but ${name} has shape [${got.join(', ')}]`)
    return t
  }
  const wEncEntry = tensor('W_enc', ['d_in', 'd_sae'])
  const wDecEntry = tensor('W_dec', ['d_sae', 'd_in'])
  const bDecEntry = tensor('b_dec', ['d_in'])
  const bEncEntry = tensor('b_enc', ['d_sae'])
  const thresholdEntry = architecture === 'jumprelu' ? tensor('threshold', ['d_sae']) : undefined

  const weights: SaeWeights = {
    architecture: architecture as SaeArchitecture,
    dIn, dSae,
    ...(k !== undefined ? { k } : {}),
    wEnc: tensorToFloat32(wEncEntry),
    bEnc: tensorToFloat32(bEncEntry),
    bDec: tensorToFloat32(bDecEntry),
    ...(thresholdEntry ? { threshold: tensorToFloat32(thresholdEntry) } : {}),
    applyBDecToInput,
    normalizeActivations,
    rescaleActsByDecoderNorm,
    ...(rescaleActsByDecoderNorm ? { decoderNorms: rowNorms(wDecEntry, dSae, dIn) } : {}),
    hookName: hookName as string,
    ...(contextSize !== undefined ? { contextSize } : {}),
    ...(prependBos !== undefined ? { prependBos } : {}),
    sourceDtype: wEncEntry.dtype,
  }
  return weights
}

/** L2 norm of each row of a [rows, cols] tensor, a row at a time so a large W_dec is never widened whole. */
function rowNorms(entry: TensorEntry, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows)
  const bytesPerRow = entry.bytes.byteLength / rows
  for (let r = 0; r < rows; r++) {
    const row = tensorToFloat32({ dtype: entry.dtype, shape: [cols], bytes: entry.bytes.subarray(r * bytesPerRow, (r + 1) * bytesPerRow) })
    let s = 0
    for (let c = 0; c < cols; c++) s += row[c] * row[c]
    out[r] = Math.sqrt(s)
  }
  return out
}
