/** @module RFC 9457 problem details, the body of every error response. */
import { z } from 'zod'

export const Problem = z.object({
  type: z.string().default('about:blank'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  code: z.string().optional().describe('a stable machine-readable error code'),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional()
})
export type Problem = z.infer<typeof Problem>
