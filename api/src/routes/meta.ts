/** @module Service routes: encoders and health. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { EncoderList } from '@latentbase/shared/contract/encoder'
import type { AppEnv, Deps } from '../deps.ts'

export function registerMetaRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/encoders',
      summary: 'Encoders this deployment can use, and encoder folders that failed to load (with why)',
      responses: { 200: { content: { 'application/json': { schema: EncoderList } }, description: 'encoders' } }
    }),
    c => c.json({ encoders: deps.encoders.list(), unavailable: deps.encoders.unavailable?.() ?? [] }, 200)
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      summary: 'Liveness and queue depth',
      responses: {
        200: {
          content: {
            'application/json': {
              schema: z.object({
                ok: z.boolean(),
                mode: z.string(),
                queue: z.object({ waiting: z.number(), inFlight: z.number() }).optional()
              })
            }
          },
          description: 'healthy'
        }
      }
    }),
    async c => {
      const queue = await deps.queue.depth().catch(() => undefined)
      return c.json({ ok: true, mode: deps.mode, ...(queue ? { queue } : {}) }, 200)
    }
  )
}
