/** @module The sweep after an encoding's commit: its bookkeeping (plan, staged inputs, part markers) deleted. */
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { mapLimit } from '@latentbase/shared/util/map-limit'

/** After the commit: delete the plan, staged inputs, markers, progress and part statistics (idempotent). */
export async function sweepBookkeeping(
  objects: ObjectStore,
  record: Pick<DatasetRecord, 'tenant' | 'id'>
): Promise<void> {
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  for (const entry of layout.encodeBookkeeping) {
    const keys = entry.endsWith('/') ? (await objects.list(prefix + entry)).map(o => o.key) : [prefix + entry]
    await mapLimit(keys, 16, key => objects.delete(key))
  }
}
