/**
 * @module `npm run bench:fanout`: one correlations job over a synthetic store (300 active of 16,384 latents per
 * document) run by 1, 2 and 4 analysis worker processes on the embedded queue: wall time, CPU time and peak memory
 * per worker, the blocks, and a check that every worker count gives the same answer; then the single-process counter
 * (computeCorrelations, today's path) on the same store for the before figure.
 *
 *   npm run bench:fanout [-- --docs 100000 --latents 16384 --workers 1,2,4 --budget-mb 256 --keep DIR --no-direct]
 *   npm run bench:fanout -- --analysis clusters [--sample 20000 --part-docs 50000 --k 20 --method kmeans ...]
 *
 * --analysis clusters: one clustering job instead, fitted on a sample of --sample documents (in the process that takes
 * the job message) and assigned in parts of --part-docs documents by the workers (no single-process "before": today's
 * exact path over every document is what the sample replaces).
 *
 * --keep DIR: write the store there once and reuse it (a 1M-document store takes minutes and ~3 GB). On a machine with
 * fewer cores than workers, wall time cannot fall past the cores: compare the CPU time beside it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { getJob, submitAnalysisJob } from '../services/analysis-jobs.ts'
import { SAMPLE_MAX_DOCS_CAP } from '@latentbase/shared/contract/clusters'
import { FANOUT_TENANT, fanoutRequest, prepareFanoutStore } from './fanout-store.ts'

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '100000' },
    latents: { type: 'string', default: '16384' },
    workers: { type: 'string', default: '1,2,4' },
    'budget-mb': { type: 'string', default: '256' },
    keep: { type: 'string' },
    'no-direct': { type: 'boolean', default: false },
    analysis: { type: 'string', default: 'correlations' },
    sample: { type: 'string', default: '20000' },
    'part-docs': { type: 'string', default: '50000' },
    k: { type: 'string', default: '20' },
    method: { type: 'string', default: 'kmeans' }
  }
})
const nDocs = Number(values.docs)
const nLatents = Number(values.latents)
const clusters = values.analysis === 'clusters'
if (!clusters && values.analysis !== 'correlations') throw new Error('--analysis is correlations or clusters')
const child = fileURLToPath(new URL('./fanout.child.ts', import.meta.url))

interface Usage {
  event: string
  pid: number
  cpuSeconds: number
  maxRssMB: number
  wallSeconds?: number
  result?: Record<string, unknown>
}

/** A child process whose JSON lines arrive as events. */
function start(args: string[], env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const events: Usage[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: proc.stdout! }).on('line', line => {
    if (!line.startsWith('{')) return
    events.push(JSON.parse(line) as Usage)
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise<number | null>(done => proc.on('exit', code => done(code)))
  const next = async (event: string): Promise<Usage> => {
    for (;;) {
      const hit = events.find(e => e.event === event)
      if (hit) return hit
      const more = new Promise<void>(w => waiters.push(w))
      if ((await Promise.race([more.then(() => 'line'), exited.then(() => 'exit')])) === 'exit') {
        const late = events.find(e => e.event === event)
        if (late) return late
        throw new Error(`child ${proc.pid} exited before "${event}"`)
      }
    }
  }
  return { proc, next, exited }
}

const clustersSummary = (r: Record<string, unknown>) =>
  `fitted on ${(r.fit as { sample: number } | undefined)?.sample ?? 'all'} documents; sizes ${(r.clusters as Array<{ size: number }>).map(c => c.size).join(' ')}`
const stable = ({ seconds: _s, ...rest }: Record<string, unknown>) => JSON.stringify(rest)
const fmt = (x: number, d = 1) => x.toFixed(d)

const root = values.keep ?? (await mkdtemp(join(tmpdir(), 'latentbase-fanout-')))
const children: ChildProcess[] = []
try {
  const prepared = await prepareFanoutStore(root, nDocs, nLatents)
  console.log(
    `${nDocs.toLocaleString('en')} documents x ${nLatents.toLocaleString('en')} latents: store ${prepared.written ? `written in ${fmt(prepared.seconds)} s` : 'reused'} (${root})`
  )
  const objects = new FsObjectStore(prepared.store)
  const queue = new EmbeddedQueue<AnalysisQueueMessage>(join(root, 'analysis-queue'))
  const env = {
    LATENTBASE_CORRELATION_BUDGET_MB: values['budget-mb']!,
    LATENTBASE_CLUSTER_PART_DOCS: values['part-docs']!
  }
  const request = clusters
    ? {
        k: Number(values.k),
        method: values.method,
        seed: 1,
        sampleMaxDocs: Number(values.sample),
        affinityTop: 0
      }
    : fanoutRequest(prepared.dataset)
  console.log(
    clusters
      ? `clusters: k ${values.k}, ${values.method}, fitted on ${Number(values.sample).toLocaleString('en')} documents, parts of ${Number(values['part-docs']).toLocaleString('en')}\n`
      : `budget ${values['budget-mb']} MB per worker\n`
  )
  console.log(
    `  ${'workers'.padEnd(8)} ${'blocks'.padStart(6)} ${'wall'.padStart(8)} ${'CPU (all)'.padStart(10)}  peak RSS per worker`
  )
  let reference: string | null = null
  for (const n of values.workers!.split(',').map(Number)) {
    const ws = Array.from({ length: n }, () => start(['worker', root, String(nLatents)], env))
    children.push(...ws.map(w => w.proc))
    const before = await Promise.all(ws.map(w => w.next('started')))
    const t = performance.now()
    const record = await submitAnalysisJob({ objects, queue }, FANOUT_TENANT, {
      analysis: clusters ? 'clusters' : 'correlations',
      dataset: prepared.dataset,
      request
    })
    let job = record
    for (;;) {
      job = (await getJob(objects, FANOUT_TENANT, record.id)) ?? job
      if (job.status === 'ready' || job.status === 'failed') break
      await new Promise(r => setTimeout(r, 100))
    }
    const wall = (performance.now() - t) / 1000
    for (const w of ws) w.proc.kill('SIGTERM')
    const after = await Promise.all(ws.map(w => w.next('stopped')))
    if (job.status !== 'ready') throw new Error(`the job failed: ${JSON.stringify(job.error)}`)
    const parts = (await objects.list(`${FANOUT_TENANT}/analyses/${job.id}/parts/`)).filter(o =>
      /partial-\d+\.bin$/.test(o.key)
    )
    const result = JSON.parse(new TextDecoder().decode((await objects.get(job.resultKey!))!)) as Record<string, unknown>
    const same = reference === null ? 'reference' : reference === stable(result) ? 'same answer' : 'DIFFERENT ANSWER'
    reference ??= stable(result)
    const cpu = after.reduce((s, a, i) => s + a.cpuSeconds - before[i].cpuSeconds, 0)
    console.log(
      `  ${String(n).padEnd(8)} ${String(parts.length || 1).padStart(6)} ${fmt(wall).padStart(6)} s ${fmt(cpu).padStart(8)} s  ${after.map(a => `${a.maxRssMB} MB`).join(', ')}  (${same}; ${clusters ? clustersSummary(result) : `${(result.pairs as unknown[]).length} pairs, ${result.pairsCounted} counted`})`
    )
    if (same === 'DIFFERENT ANSWER') process.exitCode = 1
  }
  await queue.close()
  // Clusters' before: every document clustered in one process (today's path), where the cap on sampleMaxDocs allows.
  const whole = clusters && nDocs <= SAMPLE_MAX_DOCS_CAP
  if (!values['no-direct'] && (!clusters || whole)) {
    const d = start(
      ['direct', root, String(nLatents), prepared.dataset],
      whole ? { BENCH_CLUSTERS_REQUEST: JSON.stringify({ ...request, sampleMaxDocs: SAMPLE_MAX_DOCS_CAP }) } : {}
    )
    children.push(d.proc)
    const s = await d.next('started')
    const r = await d.next('result')
    const e = await d.next('stopped')
    const same = reference === null ? '' : reference === stable(r.result!) ? ', same answer' : ', DIFFERENT ANSWER'
    console.log(
      `  ${'direct'.padEnd(8)} ${'-'.padStart(6)} ${fmt(r.wallSeconds!).padStart(6)} s ${fmt(e.cpuSeconds - s.cpuSeconds).padStart(8)} s  ${e.maxRssMB} MB  (${clusters ? `every document in one process, today's path: ${clustersSummary(r.result!)}` : `single process counter, today's path${same}`})`
    )
  }
  console.log(
    '\n(wall: submit to ready; CPU: user + system of the workers after their modules loaded; RSS: each process peak)'
  )
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  if (!values.keep) await rm(root, { recursive: true, force: true })
}
