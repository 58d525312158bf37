/**
 * @module `node --import tsx gpu-worker/src/bench/append.bench.ts [base] [batch]`: what appending a batch costs
 * against encoding the grown dataset again: a dataset of `base` SpamAssassin emails grows by `batch` more through
 * the real append path (plan, parts, finalize into versions/00002/, merged statistics and top examples, commit),
 * timed end to end, next to one encoding of all base + batch emails.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { versionLayout } from '@latentbase/shared/store/versions'
import { loadEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset } from '../job/encode.ts'
import { handleJob } from '../job/handler.ts'
import { loadSpamAssassin } from '../corpus/spam-assassin.ts'
import { stageInlineDataset } from './stage-dataset.ts'

const base = Number(process.argv[2] ?? 400)
const batch = Number(process.argv[3] ?? 40)
const encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
const emails = loadSpamAssassin()
  .slice(0, base + batch)
  .map(e => ({ id: e.id, text: e.text.slice(0, 2000) }))
const dir = await mkdtemp(join(tmpdir(), 'latentbase-append-bench-'))
const objects = new FsObjectStore(dir)
const datasets = new DatasetStore(objects)
const at = new Date(0).toISOString()
const jsonl = (docs: typeof emails) => docs.map(d => JSON.stringify(d)).join('\n') + '\n'
async function encodeWhole(id: string, docs: typeof emails): Promise<number> {
  const record = await stageInlineDataset(objects, datasets, { id, encoder: 'demo', docs, at })
  const t0 = performance.now()
  await encodeDataset(record, { objects, datasets, encoder, allowLocalSources: false })
  await datasets.putRecord({ ...record, status: 'ready' })
  return (performance.now() - t0) / 1000
}

try {
  const first = await encodeWhole('ds_grow', emails.slice(0, base))
  // The append as the API queues it (inline batch in the version folder, record.append), run by the worker's handler.
  await objects.put(
    layout.datasetPrefix('local', 'ds_grow') + versionLayout.dir(2) + 'input/documents.jsonl',
    jsonl(emails.slice(base))
  )
  const ready = (await datasets.getRecord('local', 'ds_grow'))!
  await datasets.putRecord({
    ...ready,
    append: { version: 2, status: 'queued', source: { inline: batch }, createdAt: at }
  })
  const pending: JobMessage[] = [{ kind: 'encode', tenant: 'local', datasetId: 'ds_grow', version: 2 }]
  const queue = {
    send: async (m: JobMessage) => {
      pending.push(m)
      return String(pending.length)
    }
  } as unknown as JobQueue<JobMessage>
  const t0 = performance.now()
  while (pending.length) {
    const job = pending.shift()!
    if (job.kind !== 'webhook')
      await handleJob(job, {
        objects,
        datasets,
        queue,
        encoder: async () => encoder,
        allowLocalSources: false,
        log: process.env.BENCH_LOG
          ? l => console.log(`${((performance.now() - t0) / 1000).toFixed(2)} s ${l}`)
          : undefined
      })
  }
  const appendSeconds = (performance.now() - t0) / 1000
  const grown = (await datasets.getRecord('local', 'ds_grow'))!
  if (grown.version !== 2 || grown.stats?.documents !== base + batch)
    throw new Error(`append did not commit: ${JSON.stringify(grown.append)}`)
  const again = await encodeWhole('ds_again', emails)
  console.log(`demo encoder, ${base} emails + a batch of ${batch}:`)
  console.log(`  encode ${base}:                 ${first.toFixed(2)} s`)
  console.log(`  append ${batch} (version 2):      ${appendSeconds.toFixed(2)} s`)
  console.log(
    `  encode all ${base + batch} again:       ${again.toFixed(2)} s  (append: ${((100 * appendSeconds) / again).toFixed(0)}% of it)`
  )
} finally {
  await rm(dir, { recursive: true, force: true })
}
