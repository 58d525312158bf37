/** @module The served OpenAPI document made ready for tools: security schemes, servers, stable operationIds and problem+json on every error. */
import { z } from '@hono/zod-openapi'
import { Problem } from '@latentbase/shared/contract/problem'

/** Routes that answer without an API key (the auth middleware and the document agree on this set). */
export const PUBLIC_PATHS = new Set(['/health', '/openapi.json'])

/**
 * operationIds by `method path`. Client generators name their methods after these, so they are part of the API:
 * never rename one. A route missing here gets `operationIdFor`'s derived name (stable too, but less readable).
 */
export const OPERATION_IDS: Readonly<Record<string, string>> = {
  'post /datasets': 'createDataset',
  'get /datasets': 'listDatasets',
  'get /datasets/{id}': 'getDataset',
  'delete /datasets/{id}': 'deleteDataset',
  'get /datasets/{id}/documents/{row}': 'getDocument',
  'get /datasets/{id}/documents/{row}/similar': 'similarDocuments',
  'get /datasets/{id}/documents/{row}/activations': 'getDocumentActivations',
  'get /datasets/{id}/similar': 'similarToText',
  'get /datasets/{id}/activations': 'getTextActivations',
  'get /datasets/{id}/facets': 'getDatasetFacets',
  'post /datasets/{id}/documents': 'appendDocuments',
  'patch /datasets/{id}': 'updateDataset',
  'get /diff': 'diffDatasets',
  'get /encoders': 'listEncoders',
  'get /health': 'getHealth',
  'get /latents': 'listLatents',
  'get /latents/{latent}': 'getLatentPage',
  'get /latents/{latent}/intervals': 'getLatentIntervals',
  'get /correlations': 'getCorrelations',
  'get /search': 'searchDocuments',
  'post /clusters': 'clusterDocuments',
  'get /jobs/{id}': 'getJob',
  'get /jobs/{id}/result': 'getJobResult',
  'post /diff/hypotheses': 'createHypotheses',
  'post /hypotheses/verify': 'verifyHypotheses',
  'post /encoders/{id}/relabel': 'relabelLatents',
  'post /uploads': 'createUpload'
}

/** `get /datasets/{id}/documents/{row}` -> `getDatasetsIdDocumentsRow`: deterministic, for routes not in OPERATION_IDS. */
export function operationIdFor(method: string, path: string): string {
  const words = path.split(/[/{}_-]+/).filter(Boolean)
  return method.toLowerCase() + words.map(w => w[0].toUpperCase() + w.slice(1)).join('')
}

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' }
const problemRefResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: PROBLEM_REF } }
})

/** The error answers any operation can give, from the app's middleware rather than its handler. */
const COMMON_ERRORS: Record<string, string> = {
  '401': 'no API key, or an unknown or revoked one (code `unauthorized`)',
  '429': 'over the rate limit of this API key; retry after `Retry-After` seconds (code `rate-limited`)'
}

type Json = Record<string, any>

/**
 * Operations whose answers carry a strong ETag (`services/answer-cache.ts`: over ready datasets an answer does not
 * change until one is deleted or grows): they take If-None-Match and may answer 304. Search with LLM steps and a
 * correlations job are answered without one.
 */
export const CACHED_ANSWER_OPERATIONS: ReadonlySet<string> = new Set([
  'get /diff',
  'get /latents',
  'get /latents/{latent}',
  'get /latents/{latent}/intervals',
  'get /correlations',
  'get /search',
  'get /datasets/{id}/documents/{row}',
  'get /datasets/{id}/documents/{row}/similar',
  'get /datasets/{id}/documents/{row}/activations',
  'get /datasets/{id}/similar',
  'get /datasets/{id}/activations',
  'get /datasets/{id}/facets'
])

const ETAG_HEADER = {
  description: 'strong tag of this answer (tenant, route, normalized query, the datasets as stored, deployment)',
  schema: { type: 'string' }
}

function declareCachedAnswer(op: Json): void {
  op.parameters ??= []
  if (!op.parameters.some((p: Json) => p.in === 'header' && p.name.toLowerCase() === 'if-none-match'))
    op.parameters.push({
      name: 'If-None-Match',
      in: 'header',
      required: false,
      description: 'an ETag this answer had: 304 without a body while it still has it',
      schema: { type: 'string' }
    })
  const ok = op.responses['200']
  if (ok)
    ok.headers = {
      ...ok.headers,
      ETag: ETAG_HEADER,
      'Cache-Control': {
        description:
          "`private, no-cache` where API keys are required (no shared cache keeps a tenant's answer), else `public, no-cache`: every use revalidates",
        schema: { type: 'string' }
      }
    }
  op.responses['304'] ??= {
    description: 'not modified: If-None-Match named the current ETag (no body; the copy the client holds is current)',
    headers: { ETag: ETAG_HEADER }
  }
}

/**
 * Completes the document @hono/zod-openapi generates from the routes. Done on the generated document rather than in
 * every createRoute so that all routes, including ones added later, get the same security, errors and names.
 */
export function finishOpenApiDocument(doc: Json, serverUrl: string): Json {
  const out: Json = structuredClone(doc)
  out.servers = [{ url: serverUrl, description: 'this deployment (local: `npm start` serves http://127.0.0.1:8787)' }]
  out.components ??= {}
  out.components.schemas = {
    ...out.components.schemas,
    Problem: out.components.schemas?.Problem ?? problemJsonSchema()
  }
  out.components.securitySchemes = {
    ...out.components.securitySchemes,
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      description: 'An API key (`lb_...`, made with `npm run keys -- create`) as `Authorization: Bearer lb_...`'
    },
    apiKeyHeader: {
      type: 'apiKey',
      in: 'header',
      name: 'x-api-key',
      description: 'The same API key in the `x-api-key` header'
    }
  }
  const seen = new Set<string>()
  for (const [path, item] of Object.entries(out.paths ?? {}) as Array<[string, Json]>) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      const op = item[method] as Json | undefined
      if (!op) continue
      op.operationId ??= OPERATION_IDS[`${method} ${path}`] ?? operationIdFor(method, path)
      if (seen.has(op.operationId)) throw new Error(`duplicate operationId ${op.operationId} (${method} ${path})`)
      seen.add(op.operationId)
      op.responses ??= {}
      if (CACHED_ANSWER_OPERATIONS.has(`${method} ${path}`)) declareCachedAnswer(op)
      const isPublic = PUBLIC_PATHS.has(path)
      if (isPublic) {
        op.security = []
      } else {
        // Either header is accepted; a local server started without API_KEYS=required ignores both.
        op.security = [{ bearerAuth: [] }, { apiKeyHeader: [] }]
        for (const [status, description] of Object.entries(COMMON_ERRORS))
          op.responses[status] ??= problemRefResponse(description)
      }
      const hasInput = (op.parameters?.length ?? 0) > 0 || op.requestBody
      if (hasInput)
        op.responses['400'] ??= problemRefResponse(
          'invalid request (code `invalid-request`, with `errors` naming each field)'
        )
      op.responses['500'] ??= problemRefResponse('an internal error (code `internal`); it has been logged')
      for (const [status, response] of Object.entries(op.responses) as Array<[string, Json]>) {
        if (Number(status) < 400 && status !== 'default') continue
        // Every error body is the one Problem schema, by reference, so generators make one error type.
        response.content = { 'application/problem+json': { schema: PROBLEM_REF } }
      }
    }
  }
  return out
}

function problemJsonSchema(): Json {
  const schema = z.toJSONSchema(Problem, { io: 'output', target: 'draft-2020-12' }) as Json
  delete schema.$schema
  schema.description = 'RFC 9457 problem details: the body of every error response'
  return schema
}
