/** @module Loads an SAELens SAE folder (cfg.json + sae_weights.safetensors) into the one internal SAE form. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  parseSafetensors,
  tensorToFloat32,
  type Safetensors,
  type TensorEntry
} from '@latentbase/shared/tensor/safetensors'
import {
  SAE_ARCHITECTURES,
  isSaeArchitecture,
  type SaeInputNormalization,
  type SaeWeights
} from './architectures/index.ts'
import type { SaeLensSource } from './architectures/types.ts'

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
  try {
    cfg = JSON.parse(cfgText)
  } catch (err) {
    throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`)
  }
  const bytes = await readFile(weightsPath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${weightsPath}: cannot be read (${err.code ?? err.message})`)
  })
  let tensors: Safetensors
  try {
    tensors = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    throw new Error(`${SAE_WEIGHTS_FILE}: ${(err as Error).message}`)
  }
  return saeFromSaeLens(cfg, tensors)
}

/** Translate a parsed cfg.json (v6 nested `metadata`, or the older flat form) and its tensors. */
export function saeFromSaeLens(cfgRaw: unknown, st: Safetensors): SaeWeights {
  if (typeof cfgRaw !== 'object' || cfgRaw === null || Array.isArray(cfgRaw))
    throw new Error(`${SAE_CFG_FILE}: not a JSON object`)
  const cfg = cfgRaw as Json
  const meta = (typeof cfg.metadata === 'object' && cfg.metadata !== null ? cfg.metadata : {}) as Json
  const fail = (msg: string): never => {
    throw new Error(`${SAE_CFG_FILE}: ${msg}`)
  }

  const int = (name: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      fail(`${name} must be a positive integer, got ${JSON.stringify(v)}`)
    return v as number
  }
  const bool = (name: string, v: unknown, dflt: boolean): boolean => {
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'boolean') fail(`${name} must be true or false, got ${JSON.stringify(v)}`)
    return v as boolean
  }
  const dIn = int('d_in', cfg.d_in)
  // Early configs gave only expansion_factor; SAELens derived d_sae = d_in * expansion_factor.
  const dSae =
    cfg.d_sae === undefined || cfg.d_sae === null
      ? cfg.expansion_factor === undefined
        ? int('d_sae', cfg.d_sae)
        : dIn * int('expansion_factor', cfg.expansion_factor)
      : int('d_sae', cfg.d_sae)

  // Before v6 the activation lived in activation_fn_str (renamed activation_fn by SAELens's 6.0 translation)
  // + activation_fn_kwargs, and architecture could be absent (standard).
  const activationFn = (cfg.activation_fn_str ?? cfg.activation_fn) as unknown
  let architecture: string
  if (cfg.architecture !== undefined && cfg.architecture !== null) {
    if (typeof cfg.architecture !== 'string')
      fail(`architecture must be a string, got ${JSON.stringify(cfg.architecture)}`)
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
      fail(
        `architecture "${architecture}" needs a "threshold" tensor in ${SAE_WEIGHTS_FILE} (save it with SAELens's inference conversion, which writes it as jumprelu)`
      )
    }
    architecture = 'jumprelu'
  }
  if (!isSaeArchitecture(architecture)) {
    return fail(
      `architecture "${architecture}" is not supported (${Object.keys(SAE_ARCHITECTURES).join(', ')}, batchtopk)`
    )
  }
  const entry = SAE_ARCHITECTURES[architecture]
  if (activationFn !== undefined && activationFn !== null && !entry.activationFns.includes(activationFn as string)) {
    fail(
      `activation_fn_str "${String(activationFn)}" is not supported for a ${architecture} SAE (${entry.activationFns.join(', ')})`
    )
  }
  // Tensors: shapes are checked against the config so that a mismatched pair fails here, not in the graph.
  const dims: Record<string, number> = { d_in: dIn, d_sae: dSae }
  const tensor = (name: string, fields: string[]): TensorEntry => {
    const t = st.tensors.get(name)
    if (!t)
      return fail(`${SAE_WEIGHTS_FILE} has no tensor "${name}" (has: ${[...st.tensors.keys()].join(', ') || 'none'})`)
    const shape = fields.map(f => dims[f])
    const got = t.shape
    if (got.length !== shape.length)
      fail(`${name} has shape [${got.join(', ')}], expected [${fields.join(', ')}] = [${shape.join(', ')}]`)
    const wrong = fields.filter((f, i) => got[i] !== dims[f])
    if (wrong.length)
      fail(`${wrong.map(f => `${f} is ${dims[f]}`).join(' and ')} but ${name} has shape [${got.join(', ')}]`)
    return t
  }
  const source: SaeLensSource = { cfg, dSae, fail, posInt: int, has: name => st.tensors.has(name), tensor }
  const readOwnTensors = entry.saeLens(source)

  // Configs from before SAELens 3 stored a bool: true meant expected_average_only_in.
  const normRaw =
    cfg.normalize_activations === true
      ? 'expected_average_only_in'
      : cfg.normalize_activations === false
        ? 'none'
        : (cfg.normalize_activations ?? 'none')
  let normalizeActivations: SaeInputNormalization
  switch (normRaw) {
    case 'none':
    case 'expected_average_only_in':
      normalizeActivations = 'none'
      break // folded into the weights at save time
    case 'constant_norm_rescale':
      normalizeActivations = 'constant_norm_rescale'
      break
    case 'layer_norm':
      normalizeActivations = 'layer_norm'
      break
    default:
      return fail(
        `normalize_activations "${String(normRaw)}" is not supported (none, expected_average_only_in, constant_norm_rescale, layer_norm)`
      )
  }
  const applyBDecToInput = bool('apply_b_dec_to_input', cfg.apply_b_dec_to_input, true)
  const rescaleActsByDecoderNorm = bool('rescale_acts_by_decoder_norm', cfg.rescale_acts_by_decoder_norm, false)
  if (rescaleActsByDecoderNorm && !entry.decoderNormRescale)
    fail(`rescale_acts_by_decoder_norm is not defined for a ${architecture} SAE`)

  const hookName = meta.hook_name ?? cfg.hook_name ?? cfg.hook_point
  if (typeof hookName !== 'string' || hookName.length === 0)
    fail('metadata.hook_name (or hook_name / hook_point in older configs) is missing')
  const contextRaw = meta.context_size ?? cfg.context_size
  const contextSize =
    contextRaw === undefined || contextRaw === null ? undefined : int('metadata.context_size', contextRaw)
  const bosRaw = meta.prepend_bos ?? cfg.prepend_bos
  const prependBos = bosRaw === undefined || bosRaw === null ? undefined : bool('metadata.prepend_bos', bosRaw, true)

  const wEncEntry = tensor('W_enc', ['d_in', 'd_sae'])
  const wDecEntry = tensor('W_dec', ['d_sae', 'd_in'])
  const bDecEntry = tensor('b_dec', ['d_in'])
  const own = readOwnTensors()

  const weights = {
    architecture,
    dIn,
    dSae,
    wEnc: tensorToFloat32(wEncEntry),
    bDec: tensorToFloat32(bDecEntry),
    ...own,
    applyBDecToInput,
    normalizeActivations,
    rescaleActsByDecoderNorm,
    ...(rescaleActsByDecoderNorm ? { decoderNorms: rowNorms(wDecEntry, dSae, dIn) } : {}),
    hookName: hookName as string,
    ...(contextSize !== undefined ? { contextSize } : {}),
    ...(prependBos !== undefined ? { prependBos } : {}),
    sourceDtype: wEncEntry.dtype,
    format: 'saelens'
  } as SaeWeights
  return weights
}

/** L2 norm of each row of a [rows, cols] tensor, a row at a time so a large W_dec is never widened whole. */
function rowNorms(entry: TensorEntry, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows)
  const bytesPerRow = entry.bytes.byteLength / rows
  for (let r = 0; r < rows; r++) {
    const row = tensorToFloat32({
      dtype: entry.dtype,
      shape: [cols],
      bytes: entry.bytes.subarray(r * bytesPerRow, (r + 1) * bytesPerRow)
    })
    let s = 0
    for (let c = 0; c < cols; c++) s += row[c] * row[c]
    out[r] = Math.sqrt(s)
  }
  return out
}
