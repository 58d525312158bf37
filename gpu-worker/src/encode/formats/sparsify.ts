/** @module EleutherAI sparsify SAEs: one folder per hook point (`layers.N`) with cfg.json + sae.safetensors, TopK. */
import { basename, dirname, join } from 'node:path'
import { tensorToFloat32 } from '@latentbase/shared/tensor/safetensors'
import type { SaeWeights } from '../architectures/index.ts'
import {
  checkExpectedSizes,
  displayer,
  exists,
  Fields,
  parseJsonObject,
  parseSafetensorsNamed,
  readFileHashed,
  tensorReader,
  transposeToFloat32,
  type LoadedSae,
  type LoadSaeOptions,
  type SaeFile,
  type SaeRefOptions
} from './common.ts'

export const SPARSIFY_CFG_FILE = 'cfg.json'
export const SPARSIFY_WEIGHTS_FILE = 'sae.safetensors'

/**
 * The hook of a sparsify folder: `layers.N` is the output of model.layers[N] (the residual stream after block N,
 * TransformerLens blocks.N.hook_resid_post = hidden_states[N + 1]), `embed_tokens` the embeddings. Named as
 * SAELens names them so a reader configured with SAELens hook names matches.
 */
export function sparsifyHook(folder: string): string | null {
  const m = /^(?:model\.)?layers[._](\d+)$/.exec(folder)
  if (m) return `blocks.${m[1]}.hook_resid_post`
  if (folder === 'embed_tokens' || folder === 'model.embed_tokens') return 'hook_embed'
  return null
}

/**
 * Encode (sparsify SparseCoder.encode / pre_acts): x - b_dec unless the coder is a transcoder, then
 * ReLU(x encoder.weight^T + encoder.bias) and the top k. ReLU before top-k keeps the same values as SAELens's
 * top-k then ReLU, so this is our topk architecture. normalize_decoder, multi_topk and skip_connection change
 * training or the decoder only, not the encode.
 */
export async function loadSparsify(
  dir: string,
  ref: SaeRefOptions = {},
  opts: LoadSaeOptions = {}
): Promise<LoadedSae> {
  const show = displayer(dir, { displayRoot: opts.displayRoot ?? dirname(dir) })
  const cfgPath = join(dir, SPARSIFY_CFG_FILE)
  const weightsPath = join(dir, SPARSIFY_WEIGHTS_FILE)
  const cfgFile = await readFileHashed(cfgPath)
  const weightsFile = await readFileHashed(weightsPath)
  const f = new Fields(show(cfgPath), parseJsonObject(cfgFile.bytes, show(cfgPath)))
  const st = parseSafetensorsNamed(weightsFile.bytes, show(weightsPath))

  const activation = f.str('activation', 'topk')
  if (activation !== 'topk') f.fail(`activation "${activation}" is not supported (topk)`)
  if (f.bool('signed', false)) f.fail('signed is true: signed top-k coders are not supported')
  const transcode = f.bool('transcode', false)
  f.bool('normalize_decoder', true)
  f.bool('multi_topk', false)
  f.bool('skip_connection', false)

  // d_in is in the cfg.json sparsify writes; older folders lack it, so the encoder's shape decides.
  const enc = st.tensors.get('encoder.weight')
  if (!enc)
    f.fail(`${show(weightsPath)} has no tensor "encoder.weight" (has: ${[...st.tensors.keys()].join(', ') || 'none'})`)
  if (enc!.shape.length !== 2)
    f.fail(`encoder.weight has shape [${enc!.shape.join(', ')}], expected [num_latents, d_in]`)
  const dIn = f.cfg.d_in === undefined ? enc!.shape[1] : f.posInt('d_in')
  const numLatents =
    f.cfg.num_latents === undefined || f.cfg.num_latents === 0
      ? dIn * f.posInt('expansion_factor', f.cfg.expansion_factor ?? 32)
      : f.posInt('num_latents')
  const k = f.posInt('k', f.cfg.k ?? 32)
  if (k > numLatents) f.fail(`k is ${k} but num_latents is only ${numLatents}`)
  const tensor = tensorReader(st, show(weightsPath), msg => f.fail(msg), { d_in: dIn, num_latents: numLatents })
  const encoder = tensor('encoder.weight', ['num_latents', 'd_in'])
  const bEnc = tensorToFloat32(tensor('encoder.bias', ['num_latents']))
  const bDec = tensorToFloat32(tensor('b_dec', ['d_in']))
  if (st.tensors.has('W_dec')) tensor('W_dec', ['num_latents', 'd_in'])
  checkExpectedSizes(ref, dIn, numLatents, show(cfgPath))

  const folder = basename(dir)
  const folderHook = sparsifyHook(folder)
  let hookName: string
  let hookOrigin: string
  if (ref.hookName !== undefined) {
    if (folderHook !== null && folderHook !== ref.hookName && !(ref.hookName === folder)) {
      throw new Error(
        `encoder.json: sae.hookName is "${ref.hookName}" but the sparsify folder ${folder} is ${folderHook}`
      )
    }
    hookName = folderHook ?? ref.hookName
    hookOrigin = 'encoder.json says sae.hookName'
  } else if (folderHook !== null) {
    hookName = folderHook
    hookOrigin = `the sparsify folder name ${folder} says`
  } else {
    throw new Error(
      `encoder.json: sae.hookName is required: the sparsify folder name "${folder}" is not layers.N or embed_tokens`
    )
  }

  // The training run's config.json (one folder up) holds ctx_len; SAELens defaults to 2048 without it.
  let contextSize = ref.contextSize
  const files: SaeFile[] = [
    { role: 'saeCfg', path: cfgPath, sha256: cfgFile.sha256 },
    { role: 'saeWeights', path: weightsPath, sha256: weightsFile.sha256 }
  ]
  const runCfgPath = join(dirname(dir), 'config.json')
  if (contextSize === undefined && (await exists(runCfgPath))) {
    const run = new Fields(
      show(runCfgPath),
      parseJsonObject((await readFileHashed(runCfgPath)).bytes, show(runCfgPath))
    )
    contextSize = run.optPosInt('ctx_len')
  }
  const sae: SaeWeights = {
    architecture: 'topk',
    dIn,
    dSae: numLatents,
    k,
    wEnc: transposeToFloat32(encoder, numLatents, dIn),
    bEnc,
    bDec,
    applyBDecToInput: !transcode,
    normalizeActivations: 'none',
    rescaleActsByDecoderNorm: false,
    hookName,
    contextSize: contextSize ?? 2048,
    prependBos: true,
    sourceDtype: encoder.dtype,
    format: 'sparsify'
  }
  return { sae, files, hookOrigin, contextOrigin: 'encoder.json has no sae.contextSize' }
}
