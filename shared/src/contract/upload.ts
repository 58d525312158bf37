/** @module The upload contract: POST /uploads (a file as the raw body) and the upload:// URL a dataset source can name. */
import { z } from 'zod'

/** Default cap on an upload's bytes (UPLOAD_MAX_BYTES overrides it per deployment). */
export const DEFAULT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024

/** `upload://up_<id>`: a file this tenant uploaded (POST /uploads); only the tenant that uploaded it can read it. */
export const UPLOAD_URL = /^upload:\/\/(up_[a-z0-9]{20})$/

export const UploadQuery = z.object({
  filename: z
    .string()
    .trim()
    .min(1)
    .max(200)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what a file name must not hold
    .regex(/^[^/\\\u0000-\u001f\u007f]+$/, 'a file name without "/", "\\" or control characters')
    .optional()
    .describe(
      "the file's name: its extension (.jsonl, .csv, .parquet, .txt, .gz ...) tells the format when the dataset does not"
    )
})
export type UploadQuery = z.infer<typeof UploadQuery>

export const UploadResult = z.object({
  id: z.string().describe('up_ followed by 20 letters and digits'),
  url: z.string().describe('upload://<id>: give it as source.url to POST /datasets'),
  bytes: z.number().int(),
  filename: z.string(),
  contentType: z.string(),
  createdAt: z.string()
})
export type UploadResult = z.infer<typeof UploadResult>
