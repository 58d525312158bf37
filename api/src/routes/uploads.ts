/** @module POST /uploads: a source file sent as the raw body, stored per tenant, named by an upload:// URL that POST /datasets reads. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import { DEFAULT_UPLOAD_MAX_BYTES, UploadQuery, UploadResult } from '@latentbase/shared/contract/upload'
import { newUploadId, uploadKeys, uploadProblem } from '@latentbase/shared/store/uploads'
import type { AppEnv, Deps } from '../deps.ts'
import { ApiError, problem, problemResponse } from '../problem.ts'

/** The deployment's cap: deps.uploadMaxBytes, else UPLOAD_MAX_BYTES from the environment, else 100 MB. */
export function uploadMaxBytes(deps: Deps): number {
  const env = deps.env ?? (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {}
  const fromEnv = Number(env.UPLOAD_MAX_BYTES)
  return deps.uploadMaxBytes ?? (Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_UPLOAD_MAX_BYTES)
}

export function registerUploadRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const maxBytes = uploadMaxBytes(deps)
  app.use(
    '/uploads',
    bodyLimit({
      maxSize: maxBytes,
      onError: c =>
        problem(
          c,
          413,
          'upload-too-large',
          `the file is over this server's upload limit of ${maxBytes} bytes (${(maxBytes / 1e6).toFixed(0)} MB): host it and create the dataset from its http(s) URL instead`
        )
    })
  )

  app.openapi(
    createRoute({
      method: 'post',
      path: '/uploads',
      summary: 'Upload a source file (the raw bytes as the body); create a dataset from the upload:// URL it answers',
      description:
        `The body is the file itself, sent with its Content-Type and \`?filename=\`. At most ${DEFAULT_UPLOAD_MAX_BYTES / 1e6} MB by default ` +
        '(UPLOAD_MAX_BYTES); larger bodies get 413. The file must be JSONL, JSON, CSV, Parquet or UTF-8 text (optionally gzipped). ' +
        'It is stored under the caller\'s tenant: `source.url: "upload://up_..."` in POST /datasets reads it, and only the same tenant can.',
      request: {
        query: UploadQuery,
        body: {
          required: true,
          content: { 'application/octet-stream': { schema: z.string().openapi({ type: 'string', format: 'binary' }) } }
        }
      },
      responses: {
        201: { content: { 'application/json': { schema: UploadResult } }, description: 'stored' },
        400: problemResponse('empty body or invalid filename'),
        413: problemResponse('over the upload limit'),
        415: problemResponse('not a supported source format (binary, not UTF-8, unknown extension)')
      }
    }),
    async c => {
      const { filename: given } = c.req.valid('query')
      const filename = given ?? 'upload'
      const bytes = new Uint8Array(await c.req.arrayBuffer())
      if (bytes.length === 0)
        throw new ApiError(400, 'empty-upload', "the request body is empty: send the file's bytes as the body")
      const why = uploadProblem(bytes, filename)
      if (why) throw new ApiError(415, 'unsupported-upload', why)
      const tenant = c.get('tenant')
      const id = newUploadId()
      const contentType =
        (c.req.header('content-type') ?? 'application/octet-stream').split(';')[0].trim() || 'application/octet-stream'
      const meta = UploadResult.parse({
        id,
        url: `upload://${id}`,
        bytes: bytes.length,
        filename,
        contentType,
        createdAt: (deps.now ? deps.now() : new Date()).toISOString()
      })
      // The bytes first, then the metadata: an upload is visible (to POST /datasets) only once both are stored.
      await deps.objects.put(uploadKeys.data(tenant, id), bytes, { contentType })
      await deps.objects.put(uploadKeys.meta(tenant, id), JSON.stringify(meta), { contentType: 'application/json' })
      return c.json(meta, 201)
    }
  )
}
