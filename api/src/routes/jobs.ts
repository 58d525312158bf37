/** @module Analysis job routes: GET /jobs/:id (status, progress, error) and GET /jobs/:id/result (page by page). */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { AnalysisJobView, AnalysisResultPage, ResultPageQuery } from '@latentbase/shared/contract/analysis-job'
import type { AppEnv, QueuedDeps } from '../deps.ts'
import { ApiError, problemResponse } from '../problem.ts'
import { getJob, liveProgress, readResultPage, toJobView } from '../services/analysis-jobs.ts'

const IdParam = z.object({ id: z.string().min(1).max(128) })

export function registerJobRoutes(app: OpenAPIHono<AppEnv>, deps: QueuedDeps): void {
  async function mustGet(tenant: string, id: string) {
    const record = await getJob(deps.objects, tenant, id)
    if (!record) throw new ApiError(404, 'job-not-found', `analysis job "${id}" not found`)
    return record
  }

  app.openapi(
    createRoute({
      method: 'get',
      path: '/jobs/{id}',
      summary: 'An analysis job: status, progress, or why it failed',
      request: { params: IdParam },
      responses: {
        200: { content: { 'application/json': { schema: AnalysisJobView } }, description: 'the job' },
        404: problemResponse('not found')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      return c.json(toJobView(await liveProgress(deps.objects, await mustGet(c.get('tenant'), id))), 200)
    }
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/jobs/{id}/result',
      summary: 'The result of a ready analysis job; per-row arrays (clusters: assignments) come a page at a time',
      request: { params: IdParam, query: ResultPageQuery },
      responses: {
        200: {
          content: { 'application/json': { schema: AnalysisResultPage } },
          description: 'the result (one page of its per-row arrays)'
        },
        404: problemResponse('not found'),
        409: problemResponse('not ready, or failed'),
        410: problemResponse('result no longer stored')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const { offset, limit } = c.req.valid('query')
      const record = await mustGet(c.get('tenant'), id)
      if (record.status === 'failed') {
        throw new ApiError(
          409,
          'job-failed',
          `analysis job "${id}" failed (${record.error?.code ?? 'unknown'}): ${record.error?.message ?? 'no reason recorded'}`
        )
      }
      if (record.status !== 'ready') {
        throw new ApiError(
          409,
          'job-not-ready',
          `analysis job "${id}" is ${record.status} (${Math.round(record.progress.fraction * 100)}%, ${record.progress.phase}); poll GET /jobs/${id}`
        )
      }
      const { result, page } = await readResultPage(deps.objects, record, offset, limit)
      return c.json(
        {
          ...result,
          job: { id: record.id, analysis: record.analysis, dataset: record.dataset },
          ...(page ? { page } : {})
        },
        200
      )
    }
  )
}
