/** @module The client's dataset versions: append a batch (a new version), change the drift watch, wait for a version, and `ds@N` references. */
import type { z } from 'zod'
import { DatasetView } from '@latentbase/shared/contract/dataset'
import { AppendDocumentsRequest, UpdateDatasetRequest } from '@latentbase/shared/contract/versions'
import type { Call } from './analyses.ts'

export { parseDatasetRef, formatDatasetRef, type DatasetRef } from '@latentbase/shared/contract/versions'
export type { Watch, VersionInfo } from '@latentbase/shared/contract/version-info'
export type { DriftReport } from '@latentbase/shared/contract/drift'
export type AppendDocumentsInput = z.input<typeof AppendDocumentsRequest>
export type UpdateDatasetInput = z.input<typeof UpdateDatasetRequest>
type Dataset = z.infer<typeof DatasetView>

/** The batch appended as `version` failed; the dataset stays on its previous version (`dataset.append.error` says why). */
export class AppendFailedError extends Error {
  constructor(
    readonly dataset: Dataset,
    readonly version: number
  ) {
    super(
      `appending version ${version} to dataset ${dataset.id} failed: ${dataset.append?.error?.message ?? 'no reason given'}`
    )
    this.name = 'AppendFailedError'
  }
}

/** `ds_1` at version 3, as every analysis takes it: `ds_1@3`. */
export const versionOf = (id: string, version: number): string => `${id}@${version}`

export function versionMethods(call: Call, poll: { maxIntervalMs?: number } = {}) {
  const get = (id: string) => call(DatasetView, 'GET', `/datasets/${encodeURIComponent(id)}`)
  return {
    /**
     * Append documents (inline, or a source URL as in `create`) as a new version; `append.version` in the answer is
     * its number. Sent with an Idempotency-Key (a new UUID unless given), so a retried request appends once.
     */
    append: (id: string, input: AppendDocumentsInput, opts: { idempotencyKey?: string } = {}) =>
      call(DatasetView, 'POST', `/datasets/${encodeURIComponent(id)}/documents`, AppendDocumentsRequest.parse(input), {
        'idempotency-key': opts.idempotencyKey ?? crypto.randomUUID()
      }),
    /** Rename a dataset or set its drift watch (`watch: null` removes it). */
    update: (id: string, input: UpdateDatasetInput) =>
      call(DatasetView, 'PATCH', `/datasets/${encodeURIComponent(id)}`, UpdateDatasetRequest.parse(input)),
    /** Poll until the dataset has reached `version`; throws AppendFailedError if that batch failed. */
    async waitForVersion(
      id: string,
      version: number,
      opts: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {}
    ): Promise<Dataset> {
      const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000)
      let interval = opts.intervalMs ?? 500
      for (;;) {
        const d = await get(id)
        if ((d.version ?? 1) >= version) return d
        if (d.append?.version === version && d.append.status === 'failed') throw new AppendFailedError(d, version)
        if (Date.now() > deadline)
          throw new Error(`dataset ${id} did not reach version ${version} in ${opts.timeoutMs ?? 1_800_000} ms`)
        opts.signal?.throwIfAborted()
        await new Promise(r => setTimeout(r, interval))
        interval = Math.min(interval * 1.5, poll.maxIntervalMs ?? 5000)
      }
    }
  }
}
