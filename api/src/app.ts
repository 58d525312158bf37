/** @module The Hono application: every HTTP route, independent of the runtime it is served from. */
import { RateLimiter } from './rate-limit.ts'
import { hasAnalysisQueue, resolveDeps, type AppDeps, type AppEnv } from './deps.ts'
import { registerLlmRoutes } from './routes/llm.ts'
import { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
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
import { registerJobRoutes } from './routes/jobs.ts'
import { registerClustersRoutes } from './routes/clusters.ts'
import { registerUploadRoutes } from './routes/uploads.ts'

/** Inline documents are capped by count in the contract; this caps the bytes before parsing. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024

export function createApp(appDeps: AppDeps) {
  const deps = resolveDeps(appDeps)
  // Node defines Request, Response and Headers as lazy globals that load undici's fetch (~70 ms of CPU) on first
  // use: touched here they load while the app is built (a serverless init), not inside the first request.
  void [globalThis.Request, globalThis.Response, globalThis.Headers]
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const errors = issuesToErrors(result.error.issues)
        const where =
          result.target === 'json' ? 'request body' : result.target === 'query' ? 'query string' : result.target
        const first = errors[0]
        return problem(
          c,
          400,
          'invalid-request',
          `invalid ${where}: ${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`,
          { errors }
        )
      }
    }
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
        const res = problem(
          c,
          401,
          'unauthorized',
          key
            ? 'this API key is not valid (unknown or revoked)'
            : 'an API key is required: send "Authorization: Bearer lb_..." (or x-api-key)'
        )
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
        const res = problem(
          c,
          429,
          'rate-limited',
          `too many requests for this API key: retry in ${verdict.retryAfterSeconds} s`
        )
        res.headers.set('Retry-After', String(verdict.retryAfterSeconds))
        return res
      }
      await next()
    })
  }
  // Every route: no request body is buffered past the cap (only POST /datasets can legitimately come near it).
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: c =>
        problem(
          c,
          413,
          'body-too-large',
          `request body over ${MAX_BODY_BYTES} bytes${new URL(c.req.url).pathname === '/datasets' ? ': post large datasets by URL ("source") instead of inline' : ''}`
        )
    })
  )

  registerUploadRoutes(app, deps)
  registerDatasetRoutes(app, deps)
  registerVersionRoutes(app, deps)
  registerDiffRoutes(app, deps)
  registerMetaRoutes(app, deps)
  registerLatentRoutes(app, deps)
  registerCorrelationsRoutes(app, deps)
  registerSearchRoutes(app, deps)
  if (hasAnalysisQueue(deps)) {
    registerClustersRoutes(app, deps)
    registerJobRoutes(app, deps)
  }
  registerLlmRoutes(app, deps)

  // Generated once from the routes, then completed for client generators (see openapi.ts); servers name the origin asked.
  let generated: Record<string, unknown> | undefined
  app.get('/openapi.json', c => {
    generated ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'Latentbase API',
        version: deps.version ?? '0.1.0',
        description: 'Encode text datasets into sparse autoencoder latents and compare them.'
      }
    }) as unknown as Record<string, unknown>
    return c.json(finishOpenApiDocument(generated, new URL(c.req.url).origin))
  })

  app.notFound(c =>
    problem(
      c,
      404,
      'route-not-found',
      `no route for ${c.req.method} ${new URL(c.req.url).pathname}; see GET /openapi.json`
    )
  )
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
      res.headers.forEach((v, k) => {
        if (k !== 'content-type' && k !== 'content-length') out.headers.set(k, v)
      })
      return out
    }
    // A malformed id that got past a route (a query or body field) names nothing: answered as a missing one.
    if (err instanceof InvalidIdError)
      return problem(c, 404, `${err.kind.replace(/ id$/, '').replace(/\W+/g, '-')}-not-found`, err.message)
    if (err instanceof SyntaxError && /JSON/.test(err.message))
      return problem(c, 400, 'malformed-json', `request body is not valid JSON: ${err.message}`)
    console.error('[api] unhandled error', err)
    return problem(c, 500, 'internal', 'an internal error occurred; it has been logged')
  })
  return app
}

export type App = ReturnType<typeof createApp>
