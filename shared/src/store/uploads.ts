/** @module Uploaded source files in the object store: `{tenant}/uploads/{id}` (the bytes) and `{id}.json` (name, type, size). */
import type { z } from 'zod'
import { assertSafeId } from './layout.ts'
import type { ObjectStore } from './object-store.ts'
import { UPLOAD_URL, UploadResult } from '../contract/upload.ts'
import { randomId } from '../util/random-id.ts'

export const UploadMeta = UploadResult
export type UploadMeta = z.infer<typeof UploadMeta>

export const uploadKeys = {
  data(tenant: string, id: string): string {
    assertSafeId('tenant', tenant)
    assertSafeId('upload id', id)
    return `${tenant}/uploads/${id}`
  },
  meta: (tenant: string, id: string) => `${uploadKeys.data(tenant, id)}.json`
}

/** Upload ids: random, URL-safe, valid key segments. */
export function newUploadId(): string {
  return randomId('up_', 20)
}

/** The upload id an `upload://` URL names, or null when it is not one. */
export function uploadIdOf(url: string): string | null {
  return UPLOAD_URL.exec(url)?.[1] ?? null
}

/** This tenant's upload, or null: another tenant's id simply is not found under this tenant's prefix. */
export async function readUploadMeta(objects: ObjectStore, tenant: string, id: string): Promise<UploadMeta | null> {
  const raw = await objects.get(uploadKeys.meta(tenant, id))
  return raw ? UploadMeta.parse(JSON.parse(new TextDecoder().decode(raw))) : null
}

const KNOWN_EXTENSIONS = new Set(['jsonl', 'ndjson', 'json', 'csv', 'tsv', 'parquet', 'pq', 'txt', 'text', 'md'])

/**
 * Why an upload cannot be a dataset source, or null. The same first checks the worker makes on any source, at the door:
 * a known extension (when the name has one), and a head that is Parquet, gzip, or text (no NUL bytes, valid UTF-8).
 */
export function uploadProblem(head: Uint8Array, filename: string): string | null {
  if (head.length === 0) return 'the file is empty'
  const lower = filename.toLowerCase().replace(/\.gz(ip)?$/, '')
  const dot = lower.lastIndexOf('.')
  if (dot > 0 && !KNOWN_EXTENSIONS.has(lower.slice(dot + 1))) {
    return `"${filename}" is not a supported format: upload .jsonl, .json, .csv, .tsv, .parquet or .txt (optionally .gz)`
  }
  const starts = (magic: number[]) => magic.every((b, i) => head[i] === b)
  if (starts([0x50, 0x41, 0x52, 0x31]) || starts([0x1f, 0x8b])) return null
  const sample = head.subarray(0, 4096)
  if (sample.includes(0))
    return `"${filename}" looks binary (it has NUL bytes): upload JSONL, JSON, CSV, Parquet or plain text`
  try {
    // A multi-byte character cut at the end of the sample is fine: only the first 4 KiB less 3 bytes must decode.
    new TextDecoder('utf-8', { fatal: true }).decode(
      sample.subarray(0, sample.length === head.length ? sample.length : Math.max(0, sample.length - 3)),
      { stream: sample.length !== head.length }
    )
  } catch {
    return `"${filename}" is not UTF-8 text: upload JSONL, JSON, CSV, Parquet or plain text in UTF-8`
  }
  return null
}
