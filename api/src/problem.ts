/** @module application/problem+json (RFC 9457) responses and the errors that become them. */
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { Problem } from '@latentbase/shared/contract/problem'

/** An error a handler throws to answer with a problem document. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly extra: Partial<Problem> = {},
    /** Response headers the answer carries (e.g. Retry-After on 409 and 429). */
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

export function problem(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  detail: string,
  extra: Partial<Problem> = {}
): Response {
  const body: Problem = { type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, code, ...extra }
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/problem+json' })
}

/** zod issues as `{ path, message }` pairs a user can act on. */
export function issuesToErrors(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>
): Array<{ path: string; message: string }> {
  return issues.map(i => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }))
}

/** A route's documented error answer (OpenAPI): an application/problem+json body, described for this route. */
export function problemResponse(description: string) {
  return { content: { 'application/problem+json': { schema: Problem } }, description }
}
