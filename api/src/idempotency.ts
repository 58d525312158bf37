/**
 * @module Idempotency-Key for POST /datasets: a retried request (same key, same body) gets the first answer, and
 * creates one dataset. The first request claims the key with a create-only write; a concurrent twin waits for its
 * answer; a claim left by a crash is taken over after a while (the dataset id derives from the key, so taking
 * over re-creates the same dataset, never a second one).
 */
import { PreconditionFailedError, type ObjectStore } from '@latentbase/shared/store/object-store'
import { assertSafeId } from '@latentbase/shared/store/layout'
import { sha256HexAsync as sha256Hex } from '@latentbase/shared/util/sha256'
import { ApiError } from './problem.ts'

export interface StoredAnswer {
  status: number
  body: unknown
  location?: string
}
interface Claim {
  requestHash: string
  claimedAt: number
  answer?: StoredAnswer
}

/** A claim without an answer older than this is taken over (the first request died). */
export const CLAIM_TAKEOVER_MS = 30_000
const WAIT_STEP_MS = 100
const WAIT_MAX_MS = 3_000

export function checkIdempotencyKey(key: string): void {
  if (key.length < 1 || key.length > 255 || /[^\x21-\x7e]/.test(key)) {
    throw new ApiError(
      400,
      'invalid-idempotency-key',
      'Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice)'
    )
  }
}

/** A dataset id from the tenant and the key: the same retried request always names the same dataset. */
export async function idempotentDatasetId(tenant: string, key: string): Promise<string> {
  const hash = await sha256Hex(`${tenant}\u0000${key}`)
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789'
  let id = 'ds_'
  for (let i = 0; i < 24; i += 2) id += alphabet[parseInt(hash.slice(i, i + 2), 16) & 31]
  return id
}

export async function withIdempotency(
  objects: ObjectStore,
  tenant: string,
  key: string,
  requestBody: unknown,
  run: () => Promise<StoredAnswer>,
  now: () => number = Date.now,
  sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))
): Promise<StoredAnswer & { replayed: boolean }> {
  assertSafeId('tenant', tenant)
  checkIdempotencyKey(key)
  const path = `${tenant}/idempotency/${await sha256Hex(key)}.json`
  const requestHash = await sha256Hex(JSON.stringify(requestBody))
  const read = async (): Promise<Claim | null> => {
    const bytes = await objects.get(path)
    return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as Claim) : null
  }
  const mismatch = () =>
    new ApiError(
      422,
      'idempotency-key-reused',
      'this Idempotency-Key was used with a different request body: use a new key for a new request'
    )

  for (let waited = 0; ; waited += WAIT_STEP_MS) {
    const claim = await read()
    if (claim) {
      if (claim.requestHash !== requestHash) throw mismatch()
      if (claim.answer) return { ...claim.answer, replayed: true }
      if (now() - claim.claimedAt < CLAIM_TAKEOVER_MS) {
        if (waited >= WAIT_MAX_MS) {
          throw new ApiError(
            409,
            'request-in-progress',
            'a request with this Idempotency-Key is still being processed: retry shortly',
            {},
            { 'Retry-After': '1' }
          )
        }
        await sleep(WAIT_STEP_MS)
        continue
      }
      // Taken over: the first request died after claiming. Its dataset id is ours too.
      await objects.put(path, JSON.stringify({ requestHash, claimedAt: now() } satisfies Claim))
    } else {
      try {
        await objects.put(path, JSON.stringify({ requestHash, claimedAt: now() } satisfies Claim), {
          ifNoneMatch: true
        })
      } catch (err) {
        if (err instanceof PreconditionFailedError) continue // a twin claimed it first: wait for its answer
        throw err
      }
    }
    const answer = await run()
    await objects.put(path, JSON.stringify({ requestHash, claimedAt: now(), answer } satisfies Claim))
    return { ...answer, replayed: false }
  }
}
