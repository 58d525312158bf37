/** @module Gemma Scope SAEs: params.npz (Gemma 2) and params.safetensors + config.json (Gemma Scope 2, Gemma 3), JumpReLU. */
import { dirname, join } from 'node:path'
import { parseNpz } from '@latentbase/shared/tensor/npy'
import { tensorToFloat32, type Safetensors } from '@latentbase/shared/tensor/safetensors'
import type { SaeWeights } from '../architectures/index.ts'
import {
  checkExpectedSizes,
  displayer,
  exists,
  Fields,
  isDirectory,
  parseJsonObject,
  parseSafetensorsNamed,
  readFileHashed,
  tensorReader,
  type LoadedSae,
  type LoadSaeOptions,
  type SaeFile,
  type SaeRefOptions
} from './common.ts'

export const GEMMA_SCOPE_NPZ = 'params.npz'
export const GEMMA_SCOPE_2_WEIGHTS = 'params.safetensors'
export const GEMMA_SCOPE_2_CONFIG = 'config.json'

/**
 * The hook a Gemma Scope (1) SAE reads, from where it was stored: the site is in the repository name
 * (google/gemma-scope-2b-pt-res, -mlp, -att), the layer in the folder (layer_12/width_16k/...), as SAELens's
 * gemma-2 loader derives it. Null when the path does not say.
 */
export function gemmaScopeHookFromPath(path: string): string | null {
  const site = /gemma-scope-[^/]*?-(res|mlp|att)(?:-canonical)?(?:\/|@|$)/.exec(path)?.[1]
  if (!site) return null
  if (site === 'res' && /(^|\/)embedding(\/|$)/.test(path)) return 'hook_embed'
  const layer = /(?:^|\/)layer_(\d+)(?:\/|$)/.exec(path)?.[1]
  if (layer === undefined) return null
  return site === 'res'
    ? `blocks.${layer}.hook_resid_post`
    : site === 'mlp'
      ? `blocks.${layer}.hook_mlp_out`
      : `blocks.${layer}.attn.hook_z`
}

/** Gemma Scope 2 folders are named `{site}/layer_{L}_width_{W}_l0_{size}` (site resid_post, resid_post_all, attn_out, mlp_out). */
export function gemmaScope2HookFromPath(path: string): string | null {
  const layer = /layer_(\d+)_width_/.exec(path)?.[1]
  if (layer === undefined) return null
  if (/(^|\/)(transcoder|clt)[^/]*\//.test(path) || /transcoder|(^|\/)clt/.test(path)) return null
  if (/resid_post/.test(path)) return `blocks.${layer}.hook_resid_post`
  if (/attn_out/.test(path)) return `blocks.${layer}.hook_attn_out`
  if (/mlp_out/.test(path)) return `blocks.${layer}.hook_mlp_out`
  return null
}

/**
 * `path` is a params.npz / params.safetensors file or the folder holding one. Encode (google/gemma-scope's
 * JumpReLUSAE, SAELens gemma-2 / gemma-3 loaders): pre = x W_enc + b_enc (b_dec is NOT subtracted from the
 * input), f = ReLU(pre) * [pre > threshold]. Embedding SAEs (hook_embed) were trained on embeddings scaled by
 * sqrt(d_model), so W_enc is divided by sqrt(d_in) as SAELens does.
 */
export async function loadGemmaScope(
  path: string,
  ref: SaeRefOptions = {},
  opts: LoadSaeOptions = {}
): Promise<LoadedSae> {
  let file = path
  if (await isDirectory(path)) {
    const npz = join(path, GEMMA_SCOPE_NPZ)
    const st = join(path, GEMMA_SCOPE_2_WEIGHTS)
    if (await exists(npz)) file = npz
    else if (await exists(st)) file = st
    else
      throw new Error(
        `${displayer(path, opts)(path)}: has neither ${GEMMA_SCOPE_NPZ} (Gemma Scope) nor ${GEMMA_SCOPE_2_WEIGHTS} (Gemma Scope 2)`
      )
  }
  const show = displayer(path, { displayRoot: opts.displayRoot ?? dirname(dirname(file)) })
  const weights = await readFileHashed(file)
  const files: SaeFile[] = [{ role: 'saeWeights', path: file, sha256: weights.sha256 }]
  const what = show(file)

  let tensors: Safetensors
  let cfgFields: Fields | null = null
  let pathHook: string | null
  let v2 = false
  if (file.endsWith('.npz')) {
    try {
      tensors = { tensors: parseNpz(weights.bytes, what), metadata: {} }
    } catch (err) {
      throw new Error(
        (err as Error).message.startsWith(what) ? (err as Error).message : `${what}: ${(err as Error).message}`
      )
    }
    pathHook = gemmaScopeHookFromPath(file)
  } else if (file.endsWith('.safetensors')) {
    v2 = true
    tensors = parseSafetensorsNamed(weights.bytes, what)
    const cfgPath = join(dirname(file), GEMMA_SCOPE_2_CONFIG)
    // SAELens infers the config when a folder has none; the encode needs nothing from it but the architecture.
    if (await exists(cfgPath)) {
      const cfgFile = await readFileHashed(cfgPath)
      files.unshift({ role: 'saeCfg', path: cfgPath, sha256: cfgFile.sha256 })
      cfgFields = new Fields(show(cfgPath), parseJsonObject(cfgFile.bytes, show(cfgPath)))
      const arch = cfgFields.str('architecture', 'jump_relu')
      if (arch !== 'jump_relu') cfgFields.fail(`architecture "${arch}" is not a Gemma Scope 2 SAE (jump_relu)`)
    }
    pathHook = gemmaScope2HookFromPath(file)
  } else {
    throw new Error(`${what}: a Gemma Scope SAE is ${GEMMA_SCOPE_NPZ} or ${GEMMA_SCOPE_2_WEIGHTS}`)
  }

  let hookName: string
  let hookOrigin: string
  if (ref.hookName !== undefined) {
    if (pathHook !== null && pathHook !== ref.hookName) {
      throw new Error(`encoder.json: sae.hookName is "${ref.hookName}" but the path ${what} is that of ${pathHook}`)
    }
    hookName = ref.hookName
    hookOrigin = 'encoder.json says sae.hookName'
  } else if (pathHook !== null) {
    hookName = pathHook
    hookOrigin = `the path ${what} says`
  } else {
    throw new Error(
      `encoder.json: sae.hookName is required for ${what}: ${v2 ? 'its folder name' : 'the file'} does not say which hook it reads (e.g. "blocks.12.hook_resid_post")`
    )
  }

  // Gemma Scope 2 writes lowercase w_enc / w_dec; SAELens maps "w_" to "W_" for both releases.
  const get = (n: string) => tensors.tensors.get(n) ?? tensors.tensors.get(n.replace(/^W_/, 'w_'))
  const wEncRaw = get('W_enc')
  if (!wEncRaw)
    throw new Error(
      `${what} has no tensor "W_enc" or "w_enc" (has: ${[...tensors.tensors.keys()].join(', ') || 'none'})`
    )
  if (wEncRaw.shape.length !== 2)
    throw new Error(`${what}: W_enc has shape [${wEncRaw.shape.join(', ')}], expected [d_in, d_sae]`)
  const [dIn, dSae] = wEncRaw.shape
  const fail = (msg: string): never => {
    throw new Error(`${what}: ${msg}`)
  }
  if (dIn <= 0 || dSae <= 0) fail(`W_enc has shape [${dIn}, ${dSae}]`)
  const tensor = tensorReader(tensors, what, fail, { d_in: dIn, d_sae: dSae })
  const lower = (n: string) => [n, n.replace(/^W_/, 'w_')]
  const wEnc = tensorToFloat32(tensor(lower('W_enc'), ['d_in', 'd_sae']))
  tensor(lower('W_dec'), ['d_sae', 'd_in'])
  const bEnc = tensorToFloat32(tensor('b_enc', ['d_sae']))
  const bDec = tensorToFloat32(tensor('b_dec', ['d_in']))
  const threshold = tensorToFloat32(tensor('threshold', ['d_sae']))
  checkExpectedSizes(ref, dIn, dSae, what)
  if (hookName === 'hook_embed') {
    const scale = 1 / Math.sqrt(dIn)
    for (let i = 0; i < wEnc.length; i++) wEnc[i] *= scale
  }
  const sae: SaeWeights = {
    architecture: 'jumprelu',
    dIn,
    dSae,
    wEnc,
    bEnc,
    bDec,
    threshold,
    applyBDecToInput: false,
    normalizeActivations: 'none',
    rescaleActsByDecoderNorm: false,
    hookName,
    // SAELens's Gemma Scope configs: context_size 1024, prepend_bos true.
    contextSize: ref.contextSize ?? 1024,
    prependBos: true,
    sourceDtype: wEncRaw.dtype,
    format: 'gemma-scope'
  }
  return { sae, files, hookOrigin, contextOrigin: 'encoder.json has no sae.contextSize' }
}
