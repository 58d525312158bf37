/** @module Resource ids (datasets, analysis jobs, tenants): the one pattern the routes, the store keys and the SDK check. */
import { z } from 'zod'

/** Letters, digits, _ and -, starting with a letter or digit, at most 128: URL-safe and a valid store key segment. */
export const SAFE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/
export const ID_RULE = '1-128 letters, digits, _ and -, starting with a letter or digit'

/** A resource id in a path, query or body (a malformed one is a 400 naming the rule, never a store lookup). */
export const ResourceId = z
  .string()
  .regex(SAFE_ID_PATTERN, { error: `ids are ${ID_RULE} (for example ds_7kq2m4xw9bnp)` })

/** A malformed id reached a store key (the API answers 400: such an id names nothing). */
export class InvalidIdError extends Error {
  constructor(
    readonly kind: string,
    readonly id: string
  ) {
    super(`invalid ${kind} "${id.length > 80 ? `${id.slice(0, 80)}...` : id}": ${ID_RULE}`)
    this.name = 'InvalidIdError'
  }
}

export function assertSafeId(kind: string, id: string): void {
  if (!SAFE_ID_PATTERN.test(id)) throw new InvalidIdError(kind, id)
}

/** A row number in a path: a plain non-negative decimal integer (not 0x10, 1e3, -1 or a blank, which Number() accepts). */
export const RowParam = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,9})$/, { error: 'row is a non-negative integer in decimal (0, 1, 2, ...)' })
  .transform(Number)
