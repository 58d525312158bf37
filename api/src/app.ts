/** @module The Hono application: every HTTP route, independent of the runtime it is served from. */
import type { WindowMiner } from './services/context.ts'
import type { LlmClient } from '@latentbase/shared/llm/client'
import { registerLlmRoutes } from './routes/llm.ts'
import { RateLimiter, type RateLimit } from './rate-limit.ts'
import type { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import type { Context } from 'hono'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { EncoderCatalog } from '@latentbase/shared/encoders/catalog'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { ApiError, issuesToErrors, problem } from './problem.ts'
import { InvalidIdError } from '@latentbase/shared/contract/id'
import { finishOpenApiDocument, PUBLIC_PATHS } from './openapi.ts'
import { registerDatasetRoutes } from './routes/datasets.ts'
import { registerVersionRoutes } from './routes/versions.ts'
import { registerDiffRoutes } from './routes/diff.ts'
import { registerMetaRoutes } from './routes/meta.ts'
import { registerLatentRoutes } from './routes/latents.ts'
import { registerCorrelationsRoutes } from './routes/correlations.ts'
import { registerSearchRoutes } from './routes/search.ts'
import { registerAnalysisRoutes } from './routes/analysis-jobs.ts'
import { registerUploadRoutes } from './routes/uploads.ts'
import type { AnalysisRunners } from './services/analysis-jobs.ts'
import { AnswerCache } from './services/answer-cache.ts'

export interface AppDeps {
  objects: ObjectStore
  datasets: DatasetStore
  queue: JobQueue<JobMessage>
  encoders: EncoderCatalog
  /** 'local' allows loopback and file sources and webhooks; 'cloud' will refuse them. */
  mode: 'local' | 'cloud'
  /** The tenant a request acts for when no API keys are configured (local mode: 'local'); every store key starts with it. */
  tenantOf: (c: Context) => string
  /** API keys (stored hashed), each mapping to a tenant: when given, every route but /health and /openapi.json needs one. */
  apiKeys?: ApiKeyStore
  /** Requests per tenant: over it, 429 with Retry-After. */
  rateLimit?: RateLimit
  /** The LLM for hypotheses and verification; null: none (503). Left out: read once from LLM_* in `env`. */
  llm?: LlmClient | null
  /** Where LLM_* settings are read (default process.env). */
  env?: Record<string, string | undefined>
  /** Per-token windows re-encoded on demand (the local server, which holds the encoders); see AnalysisContext. */
  windowMiner?: WindowMiner
  now?: () => Date
  version?: string
  /** Label embeddings for search, correlations and targeted clustering (offline hashing by default). */
  embedder?: Embedder
  /** Heavy analyses (clustering) run as jobs on this queue; without it POST /clusters and /jobs are not served. */
  analysisQueue?: JobQueue<AnalysisQueueMessage>
  /** Analysis implementations (tests inject their own); the real services by default. */
  runners?: AnalysisRunners
  /** POST /clusters answers directly up to this many documents, else queues a job. */
  directMaxDocuments?: number
  /** GET /correlations answers directly up to this many documents, else queues a job (with an analysis queue). */
  correlationsDirectMaxDocuments?: number
  /** POST /uploads refuses bodies over this many bytes (default UPLOAD_MAX_BYTES from `env`, else 100 MB). */
  uploadMaxBytes?: number
  /** Answers over ready datasets (diff, latent page, correlations, search, documents) kept in this process; false: none. */
  answerCache?: AnswerCache | false
}

export type AppEnv = { Variables: { tenant: string } }


/** Inline documents are capped by count in the contract; this caps the bytes before parsing. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024

export function createApp(appDeps: AppDeps) {
  const deps = { ...appDeps, embedder: appDeps.embedder ?? new OfflineEmbedder(), answerCache: appDeps.answerCache ?? new AnswerCache() }
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const errors = issuesToErrors(result.error.issues)
        const where = result.target === 'json' ? 'request body' : result.target === 'query' ? 'query string' : result.target
        const first = errors[0]
        return problem(c, 400, 'invalid-request', `invalid ${where}: ${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, { errors })
      }
    },
  })

  app.use('*', async (c, next) => {
    if (deps.apiKeys && PUBLIC_PATHS.has(new URL(c.req.url).pathname)) {
      // Public routes read no tenant's data.
    } else if (deps.apiKeys) {
      // Bearer or x-api-key. A missing and a wrong key get the same answer; a key only ever sees its own tenant.
      const header = c.req.header('authorization') ?? ''
      const key = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? c.req.header('x-api-key') ?? ''
      const tenant = key ? await deps.apiKeys.tenantOf(key) : null
      if (!tenant) {
        const res = problem(c, 401, 'unauthorized', key ? 'this API key is not valid (unknown or revoked)' : 'an API key is required: send "Authorization: Bearer lb_..." (or x-api-key)')
        res.headers.set('WWW-Authenticate', 'Bearer realm="latentbase"')
        return res
      }
      c.set('tenant', tenant)
    } else {
      c.set('tenant', deps.tenantOf(c))
    }
    await next()
  })
  if (deps.rateLimit) {
    const limiter = new RateLimiter(deps.rateLimit, deps.now ? () => deps.now!().getTime() : Date.now)
    app.use('*', async (c, next) => {
      if (PUBLIC_PATHS.has(new URL(c.req.url).pathname)) return next()
      const verdict = limiter.take(c.get('tenant'))
      if (!verdict.ok) {
        const res = problem(c, 429, 'rate-limited', `too many requests for this API key: retry in ${verdict.retryAfterSeconds} s`)
        res.headers.set('Retry-After', String(verdict.retryAfterSeconds))
        return res
      }
      await next()
    })
  }
  // Every route: no request body is buffered past the cap (only POST /datasets can legitimately come near it).
  app.use('*', bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => problem(c, 413, 'body-too-large', `request body over ${MAX_BODY_BYTES} bytes${new URL(c.req.url).pathname === '/datasets' ? ': post large datasets by URL ("source") instead of inline' : ''}`),
  }))

  registerUploadRoutes(app, deps)
  registerDatasetRoutes(app, deps)
  registerVersionRoutes(app, deps)
  registerDiffRoutes(app, deps)
  registerMetaRoutes(app, deps)
  registerLatentRoutes(app, deps)
  registerCorrelationsRoutes(app, deps)
  registerSearchRoutes(app, deps)
  if (deps.analysisQueue) registerAnalysisRoutes(app, { ...deps, analysisQueue: deps.analysisQueue })
  registerLlmRoutes(app, deps)

  // Generated once from the routes, then completed for client generators (see openapi.ts); servers name the origin asked.
  let generated: Record<string, unknown> | undefined
  app.get('/openapi.json', (c) => {
    generated ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: { title: 'Latentbase API', version: deps.version ?? '0.1.0', description: 'Encode text datasets into sparse autoencoder latents and compare them.' },
    }) as unknown as Record<string, unknown>
    return c.json(finishOpenApiDocument(generated, new URL(c.req.url).origin))
  })

  app.notFound((c) => problem(c, 404, 'route-not-found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}; see GET /openapi.json`))
  app.onError((err, c) => {
    if (err instanceof ApiError) {
      const res = problem(c, err.status, err.code, err.message, err.extra)
      for (const [k, v] of Object.entries(err.headers)) res.headers.set(k, v)
      return res
    }
    if (err instanceof HTTPException) {
      // Keep the exception's own headers (e.g. WWW-Authenticate): rebuilding the body must not drop them.
      const res = err.getResponse()
      const code = /malformed json/i.test(err.message) ? 'malformed-json' : 'http-error'
      const out = problem(c, err.status as 400, code, err.message || res.statusText)
      res.headers.forEach((v, k) => { if (k !== 'content-type' && k !== 'content-length') out.headers.set(k, v) })
      return out
    }
    // A malformed id that got past a route (a query or body field) names nothing: answered as a missing one.
    if (err instanceof InvalidIdError) return problem(c, 404, `${err.kind.replace(/ id$/, '').replace(/\W+/g, '-')}-not-found`, err.message)
    if (err instanceof SyntaxError && /JSON/.test(err.message)) return problem(c, 400, 'malformed-json', `request body is not valid JSON: ${err.message}`)
    console.error('[api] unhandled error', err)
    return problem(c, 500, 'internal', 'an internal error occurred; it has been logged')
  })
  return app
}

export type App = ReturnType<typeof createApp>
