/**
 * @module Support for tests of analysis jobs: submit one job and run it to the end with N consumers of one embedded
 * queue (as N local workers would), collecting each consumer's log lines.
 */
import assert from 'node:assert/strict'
import type { AnalysisJobRecord, AnalysisKind } from '@latentbase/shared/contract/analysis-job'
import { getJob, submitAnalysisJob, type AnalysisJobDeps } from './analysis-jobs.ts'
import { startLocalAnalysis } from './analysis-local.ts'

export interface LocalJob {
  tenant: string
  analysis: AnalysisKind
  dataset: string
  request: Record<string, unknown>
  consumers: number
}

/** The ready job (it fails the calling test when the job fails or takes over 60 s) and the consumers' log lines. */
export async function runLocalJob(
  deps: Omit<AnalysisJobDeps, 'queue' | 'log'> & { dataDir: string },
  job: LocalJob
): Promise<{ job: AnalysisJobRecord; lines: string[] }> {
  const lines: string[] = []
  const workers = Array.from({ length: job.consumers }, (_, i) =>
    startLocalAnalysis({
      ...deps,
      log: line => lines.push(`#${i} ${line}`),
      consumer: { retryDelaySeconds: () => 0 }
    })
  )
  try {
    const record = await submitAnalysisJob({ objects: deps.objects, queue: workers[0].queue }, job.tenant, {
      analysis: job.analysis,
      dataset: job.dataset,
      request: job.request
    })
    const deadline = Date.now() + 60_000
    let got: AnalysisJobRecord | null = null
    for (;;) {
      got = await getJob(deps.objects, job.tenant, record.id)
      if (got?.status === 'ready' || got?.status === 'failed') break
      if (Date.now() > deadline) throw new Error(`job still ${got?.status}: ${lines.join('\n')}`)
      await new Promise(r => setTimeout(r, 50))
    }
    assert.equal(got.status, 'ready', JSON.stringify(got.error))
    return { job: got, lines }
  } finally {
    for (const w of workers) await w.close()
  }
}
