/** @module One entry point for every SAE format: loadSae(format, path, ref) -> the internal SaeWeights plus the files read. */
import { loadSaeLensFormat } from './saelens.ts'
import { loadGemmaScope } from './gemma-scope.ts'
import { loadSparsify } from './sparsify.ts'
import { loadGoodfire } from './goodfire.ts'
import { SAE_FORMATS, type LoadedSae, type LoadSaeOptions, type SaeFormat, type SaeRefOptions } from './common.ts'

export { SAE_FORMATS, SaeFileError, hiddenStatesIndex, sameHook } from './common.ts'
export type { LoadedSae, LoadSaeOptions, SaeFile, SaeFormat, SaeRefOptions } from './common.ts'
export { gemmaScopeHookFromPath, gemmaScope2HookFromPath } from './gemma-scope.ts'
export { sparsifyHook } from './sparsify.ts'
export { goodfireHookFromName } from './goodfire.ts'

/**
 * Load an SAE of any supported format. `path` is the folder (saelens, sparsify; gemma-scope and goodfire also
 * take the file). `ref` carries what the files may not say (hook name, context size) and expected sizes.
 */
export async function loadSae(
  format: SaeFormat,
  path: string,
  ref: SaeRefOptions = {},
  opts: LoadSaeOptions = {}
): Promise<LoadedSae> {
  switch (format) {
    case 'saelens':
      return loadSaeLensFormat(path, ref, opts)
    case 'gemma-scope':
      return loadGemmaScope(path, ref, opts)
    case 'sparsify':
      return loadSparsify(path, ref, opts)
    case 'goodfire':
      return loadGoodfire(path, ref, opts)
    default:
      throw new Error(`encoder.json: sae.format "${String(format)}" is not supported (${SAE_FORMATS.join(', ')})`)
  }
}
