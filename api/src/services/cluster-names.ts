/** @module Cluster names: the LLM names each cluster from its top latents and central documents (nameClusters), wherever the clusters are final. */
import type { Cluster } from '@latentbase/shared/contract/clusters'
import type { FailedItem } from '@latentbase/shared/contract/llm'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import { failedItem, type LlmClient } from '@latentbase/shared/llm/client'
import type { UsageLedger } from '@latentbase/shared/llm/cost'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { clip } from './hypotheses-service.ts'
import { ClusterNameAnswer, clusterNameMessages } from './llm-helpers.ts'

/** Characters of each central document the namer sees. */
export const NAME_DOCUMENT_CHARS = 600

/**
 * Sets each cluster's `name` and `description` (one call per cluster, in parallel); a call that fails leaves both
 * null and is reported in `failed`. Spending goes to `ledger`.
 */
export async function nameClusters(
  objects: ObjectStore,
  ds: { prefix: string; manifest: Pick<Manifest, 'documents'> },
  clusters: Cluster[],
  llm: LlmClient,
  ledger: UsageLedger,
  failed: FailedItem[]
): Promise<void> {
  const rowsNeeded = [...new Set(clusters.flatMap(c => c.central))].sort((a, b) => a - b)
  const docs = rowsNeeded.length
    ? await readDocuments(objects, ds.prefix, ds.manifest.documents.files, rowsNeeded, ['text'])
    : null
  const textOf = new Map<number, string>()
  if (docs)
    for (let i = 0; i < docs.row.length; i++) textOf.set(docs.row[i], clip(String(docs.text[i]), NAME_DOCUMENT_CHARS))
  await Promise.all(
    clusters.map(async c => {
      try {
        const r = await llm.chatJson(
          ClusterNameAnswer,
          {
            step: 'name-clusters',
            temperature: 0,
            messages: clusterNameMessages(
              c.latents,
              c.central.map(row => textOf.get(row) ?? '')
            )
          },
          ledger
        )
        c.name = r.value.name
        c.description = r.value.description || null
      } catch (err) {
        failed.push(failedItem(err, 'name-clusters', `cluster ${c.id}`))
        c.name = null
        c.description = null
      }
    })
  )
}
