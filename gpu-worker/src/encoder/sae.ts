/** @module Loads an SAELens SAE folder (cfg.json + sae_weights.safetensors) into the one internal SAE form. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseSafetensors, tensorToFloat32, type Safetensors, type TensorEntry } from '@latentbase/shared/tensor/safetensors'

export type SaeArchitecture = 'standard' | 'topk' | 'jumprelu' | 'gated'
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
  /** [dSae] encoder bias; for gated SAEs the gate path's bias b_gate. */
  bEnc: Float32Array
  bDec: Float32Array
  /** jumprelu only: [dSae]. */
  threshold?: Float32Array
  /** gated only: [dSae] log-scale of the magnitude path (its weights are W_enc * exp(r_mag)) and its bias. */
  rMag?: Float32Array
  bMag?: Float32Array
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
  /** Where the weights came from (saelens, gemma-scope, sparsify, goodfire), for reporting. */
  format?: string
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
  // Early configs gave only expansion_factor; SAELens derived d_sae = d_in * expansion_factor.
  const dSae = cfg.d_sae === undefined || cfg.d_sae === null
    ? (cfg.expansion_factor === undefined ? int('d_sae', cfg.d_sae) : dIn * int('expansion_factor', cfg.expansion_factor))
    : int('d_sae', cfg.d_sae)

  // Before v6 the activation lived in activation_fn_str (renamed activation_fn by SAELens's 6.0 translation)
  // + activation_fn_kwargs, and architecture could be absent (standard).
  const activationFn = (cfg.activation_fn_str ?? cfg.activation_fn) as unknown
  let architecture: string
  if (cfg.architecture !== undefined && cfg.architecture !== null) {
    if (typeof cfg.architecture !== 'string') fail(`architecture must be a string, got ${JSON.stringify(cfg.architecture)}`)
    architecture = cfg.architecture as string
    if (architecture === 'standard' && activationFn === 'topk') architecture = 'topk'
  } else {
    architecture = activationFn === 'topk' ? 'topk' : 'standard'
  }
  // BatchTopK SAEs are saved for inference as JumpReLU with one threshold per latent; a training checkpoint
  // that still says batchtopk is read the same way when it carries that threshold tensor.
  const batchTopk = architecture === 'batchtopk' || architecture === 'matryoshka_batchtopk'
  if (batchTopk) {
    if (!st.tensors.has('threshold') && !st.tensors.has('log_threshold')) {
      fail(`architecture "${architecture}" needs a "threshold" tensor in ${SAE_WEIGHTS_FILE} (save it with SAELens's inference conversion, which writes it as jumprelu)`)
    }
    architecture = 'jumprelu'
  }
  if (architecture !== 'standard' && architecture !== 'topk' && architecture !== 'jumprelu' && architecture !== 'gated') {
    fail(`architecture "${architecture}" is not supported (standard, topk, jumprelu, gated, batchtopk)`)
  }
  if (activationFn !== undefined && activationFn !== null && activationFn !== 'relu' && !(architecture === 'topk' && activationFn === 'topk')) {
    fail(`activation_fn_str "${String(activationFn)}" is not supported for a ${architecture} SAE (relu${architecture === 'topk' ? ', topk' : ''})`)
  }
  let k: number | undefined
  if (architecture === 'topk') {
    const kwargs = (typeof cfg.activation_fn_kwargs === 'object' && cfg.activation_fn_kwargs !== null ? cfg.activation_fn_kwargs : {}) as Json
    const rawK = cfg.k ?? kwargs.k
    if (rawK === undefined) fail('k is missing for a topk SAE (expected "k" or "activation_fn_kwargs.k")')
    k = int('k', rawK)
    if (k > dSae) fail(`k is ${k} but d_sae is only ${dSae}`)
  }

  // Configs from before SAELens 3 stored a bool: true meant expected_average_only_in.
  const normRaw = cfg.normalize_activations === true ? 'expected_average_only_in' : cfg.normalize_activations === false ? 'none' : cfg.normalize_activations ?? 'none'
  let normalizeActivations: SaeInputNormalization
  switch (normRaw) {
    case 'none': case 'expected_average_only_in': normalizeActivations = 'none'; break // folded into the weights at save time
    case 'constant_norm_rescale': normalizeActivations = 'constant_norm_rescale'; break
    case 'layer_norm': normalizeActivations = 'layer_norm'; break
    default: return fail(`normalize_activations "${String(normRaw)}" is not supported (none, expected_average_only_in, constant_norm_rescale, layer_norm)`)
  }
  const applyBDecToInput = bool('apply_b_dec_to_input', cfg.apply_b_dec_to_input, true)
  const rescaleActsByDecoderNorm = bool('rescale_acts_by_decoder_norm', cfg.rescale_acts_by_decoder_norm, false)
  if (rescaleActsByDecoderNorm && architecture === 'gated') fail('rescale_acts_by_decoder_norm is not defined for a gated SAE')

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
  // Gated SAEs have no b_enc: the gate path uses b_gate, the magnitude path r_mag and b_mag.
  const bEncEntry = architecture === 'gated' ? tensor('b_gate', ['d_sae']) : tensor('b_enc', ['d_sae'])
  // A JumpReLU training checkpoint holds log_threshold; the inference form (and every release) holds threshold.
  const logThreshold = architecture === 'jumprelu' && !st.tensors.has('threshold') && st.tensors.has('log_threshold')
  const thresholdEntry = architecture === 'jumprelu' ? tensor(logThreshold ? 'log_threshold' : 'threshold', ['d_sae']) : undefined
  const gated = architecture === 'gated' ? { rMag: tensorToFloat32(tensor('r_mag', ['d_sae'])), bMag: tensorToFloat32(tensor('b_mag', ['d_sae'])) } : {}

  const weights: SaeWeights = {
    architecture: architecture as SaeArchitecture,
    dIn, dSae,
    ...(k !== undefined ? { k } : {}),
    wEnc: tensorToFloat32(wEncEntry),
    bEnc: tensorToFloat32(bEncEntry),
    bDec: tensorToFloat32(bDecEntry),
    ...(thresholdEntry ? { threshold: logThreshold ? tensorToFloat32(thresholdEntry).map(Math.exp) : tensorToFloat32(thresholdEntry) } : {}),
    ...gated,
    applyBDecToInput,
    normalizeActivations,
    rescaleActsByDecoderNorm,
    ...(rescaleActsByDecoderNorm ? { decoderNorms: rowNorms(wDecEntry, dSae, dIn) } : {}),
    hookName: hookName as string,
    ...(contextSize !== undefined ? { contextSize } : {}),
    ...(prependBos !== undefined ? { prependBos } : {}),
    sourceDtype: wEncEntry.dtype,
    format: 'saelens',
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
