/** @module SAELens folders (cfg.json + sae_weights.safetensors) as a format loader: the translation itself lives in ../sae.ts. */
import { join } from 'node:path'
import { saeFromSaeLens, SAE_CFG_FILE, SAE_WEIGHTS_FILE } from '../sae.ts'
import {
  checkExpectedSizes,
  displayer,
  parseJsonObject,
  parseSafetensorsNamed,
  readFileHashed,
  type LoadedSae,
  type LoadSaeOptions,
  type SaeRefOptions
} from './common.ts'

export async function loadSaeLensFormat(
  dir: string,
  ref: SaeRefOptions = {},
  opts: LoadSaeOptions = {}
): Promise<LoadedSae> {
  const show = displayer(dir, { displayRoot: opts.displayRoot ?? join(dir, '..') })
  const cfgPath = join(dir, SAE_CFG_FILE)
  const weightsPath = join(dir, SAE_WEIGHTS_FILE)
  const cfgFile = await readFileHashed(cfgPath)
  const weightsFile = await readFileHashed(weightsPath)
  const cfg = parseJsonObject(cfgFile.bytes, show(cfgPath))
  const st = parseSafetensorsNamed(weightsFile.bytes, show(weightsPath))
  let sae: ReturnType<typeof saeFromSaeLens>
  // saeFromSaeLens names files by their base name; put the folder in front so the message points at the file.
  const folder = show(cfgPath).slice(0, -SAE_CFG_FILE.length)
  try {
    sae = saeFromSaeLens(cfg, st)
  } catch (err) {
    throw new Error(`${folder}${(err as Error).message}`)
  }
  if (ref.hookName !== undefined && ref.hookName !== sae.hookName) {
    throw new Error(
      `encoder.json: sae.hookName is "${ref.hookName}" but ${show(cfgPath)} says metadata.hook_name "${sae.hookName}"`
    )
  }
  checkExpectedSizes(ref, sae.dIn, sae.dSae, show(cfgPath))
  if (sae.contextSize === undefined && ref.contextSize !== undefined) sae.contextSize = ref.contextSize
  return {
    sae,
    files: [
      { role: 'saeCfg', path: cfgPath, sha256: cfgFile.sha256 },
      { role: 'saeWeights', path: weightsPath, sha256: weightsFile.sha256 }
    ],
    hookOrigin: `${show(cfgPath)} says metadata.hook_name`,
    contextOrigin: `${show(cfgPath)} has no metadata.context_size`
  }
}
