/** @module Finds and loads encoder folders (the bundled demo plus every folder under ENCODERS_DIR). */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StaticEncoderCatalog } from '@latentbase/shared/encoders/catalog'
import { loadEncoder, type LoadedEncoder } from './encoder/runtime.ts'

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
    if (e.isDirectory() && await isEncoder(join(encodersDir, e.name))) folders.push(join(encodersDir, e.name))
  }
  return folders
}

/** Load every folder; one broken encoder is reported and skipped, not fatal to the others. */
export async function loadEncoders(folders: string[], log: (line: string) => void = console.log): Promise<Map<string, LoadedEncoder>> {
  const out = new Map<string, LoadedEncoder>()
  for (const folder of folders) {
    try {
      const encoder = await loadEncoder(folder)
      if (out.has(encoder.info.id)) { log(`[encoders] ${folder}: id "${encoder.info.id}" already loaded, skipped`); continue }
      out.set(encoder.info.id, encoder)
      log(`[encoders] ${encoder.info.id}: ${encoder.info.hookName}, ${encoder.info.dSae} latents (${encoder.info.architecture}), ${encoder.info.labelled} labelled`)
    } catch (err) {
      log(`[encoders] ${folder}: not loaded: ${(err as Error).message}`)
    }
  }
  return out
}

export function catalogOf(encoders: Map<string, LoadedEncoder>): StaticEncoderCatalog {
  return new StaticEncoderCatalog([...encoders.values()].map((e) => ({ info: e.info, labels: e.labels, labelSources: e.labelSources, labelDetection: e.labelDetection })))
}
