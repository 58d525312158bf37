/** @module Goodfire's Llama SAEs: their torch checkpoint (.pth) or a safetensors conversion of it (nn.Linear encoder / decoder), ReLU. */
import { basename, dirname, join } from 'node:path'
import { readdir } from 'node:fs/promises'
import { tensorToFloat32, type Safetensors } from '@latentbase/shared/tensor/safetensors'
import type { SaeWeights } from '../architectures/index.ts'
import {
  checkExpectedSizes,
  displayer,
  isDirectory,
  parseSafetensorsNamed,
  readFileHashed,
  tensorReader,
  transposeToFloat32,
  type LoadedSae,
  type LoadSaeOptions,
  type SaeRefOptions
} from './common.ts'
import { readTorchStateDict } from './torch-pickle.ts'

/**
 * Goodfire names its SAEs after the layer (Llama-3.1-8B-Instruct-SAE-l19, Llama-3.3-70B-Instruct-SAE-l50) and
 * reads the residual stream after that decoder layer: SAELens's goodfire loader calls it blocks.L.hook_resid_post.
 */
export function goodfireHookFromName(name: string): string | null {
  const m = /(?:^|[-_])l(\d+)(?=$|[-_.])/i.exec(name)
  return m ? `blocks.${Number(m[1])}.hook_resid_post` : null
}

/**
 * `path` is the .pth / .safetensors file, or a folder holding exactly one. Tensors as Goodfire's SparseAutoEncoder module
 * holds them: encoder_linear.weight [d_sae, d_in], encoder_linear.bias [d_sae], decoder_linear.weight
 * [d_in, d_sae], decoder_linear.bias [d_in]. Encode (their encode): ReLU(x encoder_linear.weight^T + bias), no
 * input normalization and no decoder-bias subtraction.
 */
export async function loadGoodfire(
  path: string,
  ref: SaeRefOptions = {},
  opts: LoadSaeOptions = {}
): Promise<LoadedSae> {
  let file = path
  if (await isDirectory(path)) {
    const found = (await readdir(path)).filter(n => /\.(safetensors|pth|pt)$/.test(n))
    if (found.length !== 1) {
      throw new Error(
        `${displayer(path, opts)(path)}: expected one .safetensors or .pth file (the Goodfire checkpoint), found ${found.length ? found.join(', ') : 'none'}`
      )
    }
    file = join(path, found[0])
  }
  const show = displayer(file, { displayRoot: opts.displayRoot ?? dirname(dirname(file)) })
  const what = show(file)
  const weights = await readFileHashed(file)
  // Goodfire publishes torch.save'd state dicts; they are read without Python (no code in them runs).
  const st: Safetensors = /\.(pth|pt)$/.test(file)
    ? { tensors: readTorchStateDict(weights.bytes, what), metadata: {} }
    : parseSafetensorsNamed(weights.bytes, what)
  const fail = (msg: string): never => {
    throw new Error(`${what}: ${msg}`)
  }
  const enc = st.tensors.get('encoder_linear.weight')
  if (!enc) return fail(`has no tensor "encoder_linear.weight" (has: ${[...st.tensors.keys()].join(', ') || 'none'})`)
  if (enc.shape.length !== 2) fail(`encoder_linear.weight has shape [${enc.shape.join(', ')}], expected [d_sae, d_in]`)
  const [dSae, dIn] = enc.shape
  const tensor = tensorReader(st, what, fail, { d_in: dIn, d_sae: dSae })
  tensor('encoder_linear.weight', ['d_sae', 'd_in'])
  const bEnc = tensorToFloat32(tensor('encoder_linear.bias', ['d_sae']))
  tensor('decoder_linear.weight', ['d_in', 'd_sae'])
  const bDec = tensorToFloat32(tensor('decoder_linear.bias', ['d_in']))
  checkExpectedSizes(ref, dIn, dSae, what)

  const nameHook =
    goodfireHookFromName(basename(file).replace(/\.(safetensors|pth|pt)$/, '')) ??
    goodfireHookFromName(basename(dirname(file)))
  let hookName: string
  let hookOrigin: string
  if (ref.hookName !== undefined) {
    hookName = ref.hookName
    hookOrigin = 'encoder.json says sae.hookName'
  } else if (nameHook !== null) {
    hookName = nameHook
    hookOrigin = `the file name ${what} says`
  } else {
    throw new Error(
      `encoder.json: sae.hookName is required: the file name ${what} does not give the layer (like "-l19")`
    )
  }
  const sae: SaeWeights = {
    architecture: 'standard',
    dIn,
    dSae,
    wEnc: transposeToFloat32(enc, dSae, dIn),
    bEnc,
    bDec,
    applyBDecToInput: false,
    normalizeActivations: 'none',
    rescaleActsByDecoderNorm: false,
    hookName,
    ...(ref.contextSize !== undefined ? { contextSize: ref.contextSize } : {}),
    prependBos: true,
    sourceDtype: enc.dtype,
    format: 'goodfire'
  }
  return {
    sae,
    files: [{ role: 'saeWeights', path: file, sha256: weights.sha256 }],
    hookOrigin,
    contextOrigin: 'encoder.json has no sae.contextSize'
  }
}
