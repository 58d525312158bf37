/** @module What every SAE format loader shares: reading files with their hashes, checked config fields and tensors, hook names. */
import { constants } from 'node:buffer'
import { createHash } from 'node:crypto'
import { open, stat } from 'node:fs/promises'
import { basename, dirname, relative } from 'node:path'
import {
  parseSafetensors,
  tensorToFloat32,
  type Safetensors,
  type TensorEntry
} from '@latentbase/shared/tensor/safetensors'
import type { SaeWeights } from '../architectures/index.ts'

export const SAE_FORMATS = ['saelens', 'gemma-scope', 'sparsify', 'goodfire'] as const
export type SaeFormat = (typeof SAE_FORMATS)[number]

/** Options of an encoder.json `sae` entry that a format may need: what its files do not say, or expected sizes. */
export interface SaeRefOptions {
  /** The hook the SAE reads (gemma-scope params.npz and goodfire files carry none); checked where the files say. */
  hookName?: string
  /** Expected sizes, checked against the tensors. */
  dIn?: number
  dSae?: number
  /** Training context length, where the files do not give one. */
  contextSize?: number
}

export interface LoadSaeOptions {
  /** Error messages name files relative to this folder (the encoder folder); default: the SAE path's parent. */
  displayRoot?: string
}

export interface SaeFile {
  /** 'saeCfg' (the config) or 'saeWeights' (the tensors): the keys of the encoder fingerprint. */
  role: 'saeCfg' | 'saeWeights'
  path: string
  sha256: string
}

export interface LoadedSae {
  sae: SaeWeights
  /** Every file read, with its sha256, for the encoder fingerprint. */
  files: SaeFile[]
  /** Where the hook name came from, for messages: e.g. `sae/cfg.json says metadata.hook_name`. */
  hookOrigin: string
  /** Why there is no context size, for messages when the reader sets none: e.g. `sae/cfg.json has no metadata.context_size`. */
  contextOrigin: string
}

/** A file of the SAE that cannot be read at all (missing, unreadable): the caller names its config field. */
export class SaeFileError extends Error {
  readonly code = 'SAE_FILE_UNREADABLE'
}

/** Names files in messages relative to the display root. */
export function displayer(path: string, opts: LoadSaeOptions = {}): (file: string) => string {
  const root = opts.displayRoot ?? dirname(path)
  return file => relative(root, file) || basename(file)
}

/** Read a whole file (also past Node's 2 GiB readFile limit) and hash it. */
export async function readFileHashed(path: string): Promise<{ bytes: Uint8Array; sha256: string }> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw new SaeFileError(`${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  try {
    const { size } = await handle.stat()
    if (size > constants.MAX_LENGTH)
      throw new Error(
        `${path}: ${size} bytes is more than one buffer can hold (${constants.MAX_LENGTH}); store the SAE in float16 or bfloat16`
      )
    const bytes = new Uint8Array(size)
    const hash = createHash('sha256')
    const CHUNK = 64 << 20
    for (let at = 0; at < size; ) {
      const { bytesRead } = await handle.read(bytes, at, Math.min(CHUNK, size - at), at)
      if (bytesRead === 0) throw new SaeFileError(`${path}: file shrank while being read`)
      hash.update(bytes.subarray(at, at + bytesRead))
      at += bytesRead
    }
    return { bytes, sha256: hash.digest('hex') }
  } finally {
    await handle.close()
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch (err) {
    throw new SaeFileError(`${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

export function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${(err as Error).message})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what}: not a JSON object`)
  return value as Record<string, unknown>
}

export function parseSafetensorsNamed(bytes: Uint8Array, what: string): Safetensors {
  try {
    return parseSafetensors(bytes)
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`)
  }
}

/** Typed reads of config fields; every failure names the file and the field. */
export class Fields {
  constructor(
    readonly file: string,
    readonly cfg: Record<string, unknown>
  ) {}
  fail(msg: string): never {
    throw new Error(`${this.file}: ${msg}`)
  }
  posInt(name: string, v: unknown = this.cfg[name]): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      this.fail(`${name} must be a positive integer, got ${JSON.stringify(v)}`)
    return v as number
  }
  optPosInt(name: string, v: unknown = this.cfg[name]): number | undefined {
    return v === undefined || v === null ? undefined : this.posInt(name, v)
  }
  bool(name: string, dflt: boolean, v: unknown = this.cfg[name]): boolean {
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'boolean') this.fail(`${name} must be true or false, got ${JSON.stringify(v)}`)
    return v as boolean
  }
  str(name: string, dflt: string | undefined, v: unknown = this.cfg[name]): string | undefined {
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'string') this.fail(`${name} must be a string, got ${JSON.stringify(v)}`)
    return v as string
  }
}

/**
 * Looks tensors up by name and checks their shapes against named sizes, so a mismatched config and weights
 * fail at load time naming both (`d_sae is 4096 but W_enc has shape [16, 32]`).
 */
export function tensorReader(
  st: Safetensors,
  weightsFile: string,
  fail: (msg: string) => never,
  dims: Record<string, number>
) {
  const names = () => [...st.tensors.keys()].join(', ') || 'none'
  return (name: string | string[], fields: string[]): TensorEntry => {
    const candidates = Array.isArray(name) ? name : [name]
    const found = candidates.find(n => st.tensors.has(n))
    if (found === undefined)
      return fail(`${weightsFile} has no tensor "${candidates.join('" or "')}" (has: ${names()})`)
    const t = st.tensors.get(found)!
    const shape = fields.map(f => dims[f])
    if (t.shape.length !== shape.length)
      fail(`${found} has shape [${t.shape.join(', ')}], expected [${fields.join(', ')}] = [${shape.join(', ')}]`)
    const wrong = fields.filter((f, i) => t.shape[i] !== dims[f])
    if (wrong.length)
      fail(`${wrong.map(f => `${f} is ${dims[f]}`).join(' and ')} but ${found} has shape [${t.shape.join(', ')}]`)
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F64')
      fail(`${found} has dtype ${t.dtype}; SAE weights must be F32, F16, BF16 or F64`)
    return t
  }
}

/** [rows, cols] -> [cols, rows] float32, in cache-sized tiles (encoder weights stored as nn.Linear [d_sae, d_in]). */
export function transposeToFloat32(entry: TensorEntry, rows: number, cols: number): Float32Array {
  const src = tensorToFloat32(entry)
  const out = new Float32Array(rows * cols)
  const TILE = 64
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE)
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE)
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c]
    }
  }
  return out
}

/** Check sizes the encoder.json states against those the files give. */
export function checkExpectedSizes(ref: SaeRefOptions, dIn: number, dSae: number, what: string): void {
  if (ref.dIn !== undefined && ref.dIn !== dIn)
    throw new Error(`encoder.json: sae.dIn is ${ref.dIn} but ${what} has d_in ${dIn}`)
  if (ref.dSae !== undefined && ref.dSae !== dSae)
    throw new Error(`encoder.json: sae.dSae is ${ref.dSae} but ${what} has d_sae ${dSae}`)
}

/**
 * The Hugging Face `hidden_states` index a hook reads, when it is a residual-stream hook: hidden_states[0] is the
 * embedding output and hidden_states[i] the output of block i-1, so blocks.L.hook_resid_pre = L,
 * blocks.L.hook_resid_post = L + 1, sparsify's layers.L (the output of model.layers[L]) = L + 1.
 */
export function hiddenStatesIndex(hookName: string): number | null {
  let m = /^blocks\.(\d+)\.hook_resid_pre$/.exec(hookName)
  if (m) return Number(m[1])
  m =
    /^blocks\.(\d+)\.hook_resid_post$/.exec(hookName) ??
    /^layers[._](\d+)$/.exec(hookName) ??
    /^model\.layers\.(\d+)$/.exec(hookName)
  if (m) return Number(m[1]) + 1
  return null
}

/** Two hook names read the same activations: equal, or the same residual-stream hidden state. */
export function sameHook(a: string, b: string): boolean {
  if (a === b) return true
  const i = hiddenStatesIndex(a)
  return i !== null && i === hiddenStatesIndex(b)
}
