/**
 * @module Dataset versions: the `ds_1@3` reference every analysis accepts (one parser for the API, SDK and CLI), the
 * append request of POST /datasets/{id}/documents, and the per-version counts a dataset answers.
 */
import { z } from 'zod'
import { INLINE_DOCUMENTS_MAX, InlineDocument, SourceSpec } from './dataset.ts'
import { ID_RULE, SAFE_ID_PATTERN } from './id.ts'
import { Watch } from './version-info.ts'

export { Watch, VersionInfo } from './version-info.ts'

/** Versions are numbered 1, 2, 3, ... (1: the documents the dataset was created with). */
export const MAX_VERSION = 999_999

/** A dataset reference: an id, optionally pinned to a version (`ds_1@3`); without one, the latest version. */
export interface DatasetRef {
  id: string
  version?: number
}

export const DATASET_REF_RULE = `a dataset id (${ID_RULE}), optionally followed by @<version> (e.g. ds_7kq2m4xw9bnp@2)`

/** Parse `ds_1` or `ds_1@3`; null when it is neither (the caller answers with DATASET_REF_RULE). */
export function parseDatasetRef(ref: string): DatasetRef | null {
  const at = ref.lastIndexOf('@')
  const id = at < 0 ? ref : ref.slice(0, at)
  if (!SAFE_ID_PATTERN.test(id)) return null
  if (at < 0) return { id }
  const v = ref.slice(at + 1)
  if (!/^[1-9][0-9]{0,5}$/.test(v)) return null
  return { id, version: Number(v) }
}

/** The reference as text: `ds_1` or `ds_1@3`. */
export const formatDatasetRef = (r: DatasetRef): string => (r.version === undefined ? r.id : `${r.id}@${r.version}`)

export const AppendDocumentsRequest = z
  .object({
    source: SourceSpec.optional(),
    documents: z.array(InlineDocument).min(1).max(INLINE_DOCUMENTS_MAX).optional(),
    poolRoles: z.array(z.string().min(1)).min(1).optional().describe('inline chat documents: whose tokens are pooled')
  })
  .strict()
  .refine(r => (r.source === undefined) !== (r.documents === undefined), {
    message: 'give exactly one of "source" (a URL) or "documents" (inline)',
    path: ['source']
  })
export type AppendDocumentsRequest = z.infer<typeof AppendDocumentsRequest>

/** PATCH /datasets/{id}: what can change on a dataset after creation. `watch: null` removes the watch. */
export const UpdateDatasetRequest = z
  .object({
    name: z.string().max(200).optional(),
    watch: Watch.nullable().optional()
  })
  .strict()
export type UpdateDatasetRequest = z.infer<typeof UpdateDatasetRequest>
