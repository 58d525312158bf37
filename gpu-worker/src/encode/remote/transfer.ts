/** @module The resumable transfer every transport shares: ranged reads into a .partial file, size and digest checks, retries, then a rename into the cache. */
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import {
  formatBytes,
  hashFile,
  metaPath,
  sizeOf,
  tooLarge,
  writeAtomic,
  type CacheMeta,
  type Ctx,
  type FetchedPart
} from './cache.ts'
import { RemotePartError } from './refs.ts'

/** One ranged read of the source from `offset`; `start` is where the body really begins (0 when the range was ignored). */
export interface Opened {
  start: number
  total?: number
  /** A validator (ETag) that must still match when a later attempt resumes this transfer. */
  validator?: string
  /** A sha256 the source itself vouches for (a quoted 64-hex ETag). */
  sha256?: string
  body: AsyncIterable<Uint8Array>
}

export interface Transfer {
  label: string
  final: string
  source: string
  expectedSize?: number
  sha256?: string
  /** Expected git blob id (the hub's ETag of a file not in LFS): sha1 of "blob <size>\0" + content. */
  gitSha1?: string
  /** When known before opening (s3 ETag, hub commit), a partial from another version is discarded. */
  validator?: string
  revision?: string
  open(offset: number, validator: string | undefined): Promise<Opened>
}

export async function* readerChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
    await body.cancel().catch(() => {})
  }
}

export function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } }
  const cause = e?.cause?.code ?? e?.cause?.message
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err)
}

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (err as { name?: string })?.name === 'AbortError'
}

/**
 * Downloads into `{final}.partial`, resuming with a ranged read after an interruption, verifies size and digest,
 * records the sidecar, then renames into place so a cache file is only ever complete.
 */
export async function transfer(ctx: Ctx, t: Transfer): Promise<FetchedPart> {
  const partial = `${t.final}.partial`
  const validatorFile = `${partial}.etag`
  await mkdir(dirname(t.final), { recursive: true })
  if (t.expectedSize !== undefined && t.expectedSize > ctx.maxBytes)
    throw tooLarge(t.label, t.expectedSize, ctx.maxBytes)
  let expectedSize = t.expectedSize
  for (let attempt = 0; ; attempt++) {
    let have = await sizeOf(partial)
    const saved = have > 0 ? await readFile(validatorFile, 'utf8').catch(() => undefined) : undefined
    if (have > 0 && t.validator !== undefined && saved !== t.validator) {
      ctx.log(`${t.label}: discarding a partial download of another version`)
      have = 0
    }
    if (expectedSize !== undefined && have > expectedSize) have = 0
    if (have === 0) await rm(partial, { force: true })
    const sha = createHash('sha256')
    const git =
      t.gitSha1 && expectedSize !== undefined ? createHash('sha1').update(`blob ${expectedSize}\0`) : undefined
    const hashes = git ? [sha, git] : [sha]
    if (have > 0) await hashFile(partial, hashes)
    let got = have
    let pinned = t.sha256
    try {
      if (expectedSize === undefined || have < expectedSize) {
        const opened = await t.open(have, have > 0 ? (saved ?? t.validator) : undefined)
        if (opened.total !== undefined) {
          if (opened.total > ctx.maxBytes) throw tooLarge(t.label, opened.total, ctx.maxBytes)
          expectedSize ??= opened.total
        }
        pinned ??= opened.sha256
        if (opened.start !== have) {
          if (have > 0) ctx.log(`${t.label}: the server ignored the range; downloading from the start`)
          return await restart()
        }
        if (have > 0)
          ctx.log(`${t.label}: resuming at byte ${have}${expectedSize !== undefined ? ` of ${expectedSize}` : ''}`)
        else ctx.log(`${t.label}: downloading${expectedSize !== undefined ? ` ${formatBytes(expectedSize)}` : ''}`)
        const validator = opened.validator ?? t.validator
        if (validator !== undefined) await writeFile(validatorFile, validator)
        else await rm(validatorFile, { force: true })
        const fh = await open(partial, have > 0 ? 'a' : 'w')
        try {
          for await (const chunk of opened.body) {
            got += chunk.byteLength
            if (got > ctx.maxBytes) throw tooLarge(t.label, undefined, ctx.maxBytes)
            for (const h of hashes) h.update(chunk)
            await fh.write(chunk)
          }
        } finally {
          await fh.close()
        }
      }
      if (expectedSize !== undefined && got < expectedSize) {
        throw new RemotePartError('interrupted', `${t.label}: the body ended after ${got} of ${expectedSize} bytes`, {
          retryable: true
        })
      }
    } catch (err) {
      if (err instanceof RemotePartError && err.code === 'too-large') {
        await rm(partial, { force: true })
        throw err
      }
      const retryable = err instanceof RemotePartError ? err.retryable : !isAbort(err, ctx.signal)
      if (!retryable || attempt >= ctx.retries) {
        if (err instanceof RemotePartError && !err.retryable) throw err
        if (isAbort(err, ctx.signal)) throw err
        throw new RemotePartError(
          'interrupted',
          `${t.label}: the transfer failed after ${got} bytes (${describe(err)}); ${got > 0 ? 'the partial download is kept and the next call resumes it' : 'try again'}`,
          { retryable: true, cause: err }
        )
      }
      ctx.log(
        `${t.label}: transfer interrupted after ${got} bytes (${describe(err)}); resuming (retry ${attempt + 1} of ${ctx.retries})`
      )
      continue
    }
    if (expectedSize !== undefined && got !== expectedSize) {
      await rm(partial, { force: true })
      throw new RemotePartError(
        'checksum',
        `${t.label}: received ${got} bytes but the source said ${expectedSize}; the partial download was deleted`
      )
    }
    const digest = sha.digest('hex')
    if (pinned !== undefined && digest !== pinned) {
      await rm(partial, { force: true })
      await rm(validatorFile, { force: true })
      throw new RemotePartError(
        'checksum',
        `${t.label}: sha256 mismatch: expected ${pinned}, got ${digest}; the partial download was deleted`
      )
    }
    if (git && t.gitSha1) {
      const oid = git.digest('hex')
      if (oid !== t.gitSha1) {
        await rm(partial, { force: true })
        await rm(validatorFile, { force: true })
        throw new RemotePartError(
          'checksum',
          `${t.label}: git blob id mismatch: expected ${t.gitSha1}, got ${oid}; the partial download was deleted`
        )
      }
    }
    // The sidecar is written before the rename: a file in its final place always has its record.
    const meta: CacheMeta = {
      bytes: got,
      sha256: digest,
      source: t.source,
      ...(t.validator ? { etag: t.validator } : {})
    }
    await writeAtomic(metaPath(ctx, t.final), JSON.stringify(meta))
    await rename(partial, t.final)
    await rm(validatorFile, { force: true })
    ctx.log(`${t.label}: cached ${formatBytes(got)} at ${t.final}`)
    return {
      path: t.final,
      bytes: got,
      sha256: digest,
      ...(t.revision ? { revision: t.revision } : {}),
      fromCache: false
    }
  }

  async function restart(): Promise<FetchedPart> {
    await rm(partial, { force: true })
    await rm(validatorFile, { force: true })
    return transfer(ctx, t)
  }
}
