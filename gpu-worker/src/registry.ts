/** @module Finds and loads encoder folders (the bundled demo plus every folder under ENCODERS_DIR). */
import { readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { UnavailableEncoder } from '@latentbase/shared/contract/encoder'
import { loadEncoder, type LoadedEncoder } from './encode/runtime.ts'

export const DEMO_ENCODER_DIR = fileURLToPath(new URL('../encoders/demo/', import.meta.url))

/** Folders holding an encoder.json: the demo, then each child of `encodersDir` (or `encodersDir` itself). */
export async function findEncoderFolders(encodersDir?: string): Promise<string[]> {
  const folders = [DEMO_ENCODER_DIR]
  if (!encodersDir) return folders
  const isEncoder = async (dir: string) => (await stat(join(dir, 'encoder.json')).catch(() => null))?.isFile() ?? false
  if (await isEncoder(encodersDir)) return [...folders, encodersDir]
  const entries = await readdir(encodersDir, { withFileTypes: true }).catch((err: Error) => {
    throw new Error(`ENCODERS_DIR ${encodersDir} cannot be read: ${err.message}`)
  })
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory() && (await isEncoder(join(encodersDir, e.name)))) folders.push(join(encodersDir, e.name))
  }
  return folders
}

/** The loaded encoders by id, and the folders that failed to load with why (GET /encoders lists both). */
export class LoadedEncoders extends Map<string, LoadedEncoder> {
  readonly unavailable: UnavailableEncoder[] = []
}

/**
 * An error message fit for tenants: the encoder folder's path becomes its name, any other absolute path its last
 * segment, so no machine path (home, cache, ENCODERS_DIR) leaves the server.
 */
export function tenantSafeMessage(message: string, folder: string): string {
  const root = resolve(folder)
  const name = basename(root)
  let out = message
    .split(root + sep)
    .join('')
    .split(root)
    .join(name)
  for (const prefix of [dirname(root) + sep, homedir() + sep]) out = out.split(prefix).join('')
  // Any absolute path left (a cache file, a sibling folder) keeps its last segment only.
  return out.replace(
    /(^|[\s"'(=:,])\/(?:[^\s"'():,/]+\/)+([^\s"'():,/]*)/g,
    (_, lead: string, last: string) => `${lead}${last || '(path)'}`
  )
}

/** Load every folder; one broken encoder is reported (logged, and listed as unavailable) and skipped, not fatal to the others. */
export async function loadEncoders(
  folders: string[],
  log: (line: string) => void = console.log
): Promise<LoadedEncoders> {
  const out = new LoadedEncoders()
  for (const folder of folders) {
    try {
      const encoder = await loadEncoder(folder)
      if (out.has(encoder.info.id)) {
        log(`[encoders] ${folder}: id "${encoder.info.id}" already loaded, skipped`)
        out.unavailable.push({
          folder: basename(resolve(folder)),
          error: `id "${encoder.info.id}" is already used by another encoder folder`
        })
        await encoder.close()
        continue
      }
      out.set(encoder.info.id, encoder)
      log(
        `[encoders] ${encoder.info.id}: ${encoder.info.hookName}, ${encoder.info.dSae} latents (${encoder.info.architecture}), ${encoder.info.labelled} labelled`
      )
    } catch (err) {
      const message = (err as Error).message
      log(`[encoders] ${folder}: not loaded: ${message}`)
      out.unavailable.push({ folder: basename(resolve(folder)), error: tenantSafeMessage(message, folder) })
    }
  }
  if (out.unavailable.length) {
    log(
      `[encoders] ${out.unavailable.length} encoder folder(s) not loaded (GET /encoders lists them under "unavailable"):`
    )
    for (const u of out.unavailable) log(`[encoders]   ${u.folder}: ${u.error}`)
  }
  return out
}

/** The API's view of loaded encoders; folders that failed to load come along when `encoders` is what loadEncoders returned. */
export function catalogOf(encoders: Map<string, LoadedEncoder>): StaticEncoderCatalog {
  return new StaticEncoderCatalog(
    [...encoders.values()].map(e => ({
      info: e.info,
      labels: e.labels,
      labelSources: e.labelSources,
      labelDetection: e.labelDetection
    })),
    encoders instanceof LoadedEncoders ? encoders.unavailable : []
  )
}
