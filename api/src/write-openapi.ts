/** @module `npm run lint:openapi` helper: writes the API's OpenAPI document, built in-process from the routes, to a file (or stdout). */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { createApp } from './app.ts'

/** The document as GET /openapi.json serves it from `serverUrl`, with every optional route (analysis jobs) registered. */
export async function openApiDocument(serverUrl = 'http://127.0.0.1:8787'): Promise<Record<string, any>> {
  const objects = new MemoryObjectStore()
  // The queues are never used: building the document sends nothing.
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders: new StaticEncoderCatalog([]),
    mode: 'local',
    tenantOf: () => 'local',
    queue: {} as JobQueue<JobMessage>,
    analysisQueue: {} as JobQueue<AnalysisQueueMessage>,
    env: {}
  })
  const res = await app.request(`${serverUrl}/openapi.json`)
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}: ${await res.text()}`)
  return (await res.json()) as Record<string, any>
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const json = JSON.stringify(await openApiDocument(process.env.LATENTBASE_URL), null, 2) + '\n'
  if (process.argv[2]) {
    // `npm run lint:openapi` writes into dist/, which a fresh clone does not have yet.
    await mkdir(dirname(process.argv[2]), { recursive: true })
    await writeFile(process.argv[2], json)
  } else process.stdout.write(json)
}
