/** @module Fetches encoder parts named by hf://, https:// and s3:// refs into a local cache: once, resumable, checksum-verified, pinned to a commit. */
import { join } from 'node:path'
import { context, type FetchedPart, type FetchPartOptions } from './cache.ts'
import { fetchHf, hfRef, hfRoot } from './hub.ts'
import { redact } from './http.ts'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { basenameOf, fetchHttpsTo } from './https.ts'
import { badRef, checkRelPath, parsePartUrl, parseRef } from './refs.ts'
import { fetchS3To } from './s3.ts'

export type { FetchedPart, FetchPartOptions } from './cache.ts'
export { isRemotePart, parsePartUrl, RemotePartError, type PartUrl, type RemotePartErrorCode } from './refs.ts'

/** Fetches one part into the cache (or finds it there) and returns its local path. */
export async function fetchPart(ref: string, opts: FetchPartOptions): Promise<FetchedPart> {
  const p = parsePartUrl(ref)
  const ctx = context(opts)
  if (p.kind === 'hf') return fetchHf(ctx, p, ref)
  if (p.kind === 'https') {
    return fetchHttpsTo(
      ctx,
      p.url,
      p.sha256,
      join(ctx.cacheDir, 'https', sha256Hex(p.url), basenameOf(p.url)),
      redact(p.url)
    )
  }
  return fetchS3To(
    ctx,
    opts.s3,
    p.bucket,
    p.key,
    p.sha256,
    join(ctx.cacheDir, 's3', p.bucket, ...p.key.split('/')),
    `s3://${p.bucket}/${p.key}`
  )
}

/**
 * Fetches named files under one folder ref into one local folder (e.g. an SAELens SAE: cfg.json +
 * sae_weights.safetensors). For hf:// the revision is resolved once and every file comes from that commit.
 */
export async function fetchFolder(
  ref: string,
  files: string[],
  opts: FetchPartOptions
): Promise<{ dir: string; revision?: string; files: FetchedPart[] }> {
  const p = parseRef(ref, true)
  if (files.length === 0) throw badRef(ref, 'no files named for the folder')
  for (const f of files) checkRelPath(ref, f, 'file')
  const ctx = context(opts)
  const out: FetchedPart[] = []
  if (p.kind === 'hf') {
    const under = (f: string) => (p.path ? `${p.path}/${f}` : f)
    const first = await fetchHf(ctx, { ...p, path: under(files[0]) }, hfRef(p, p.revision, under(files[0])))
    const commit = first.revision!
    out.push(first)
    for (const f of files.slice(1)) {
      out.push(await fetchHf(ctx, { ...p, revision: commit, path: under(f) }, hfRef(p, commit, under(f))))
    }
    return { dir: join(hfRoot(ctx, p), commit, ...(p.path ? p.path.split('/') : [])), revision: commit, files: out }
  }
  if (p.kind === 'https') {
    const base = p.url.replace(/\/+$/, '')
    const dir = join(ctx.cacheDir, 'https', sha256Hex(`${base}/`))
    for (const f of files) {
      const url = `${base}/${f.split('/').map(encodeURIComponent).join('/')}`
      out.push(await fetchHttpsTo(ctx, url, undefined, join(dir, ...f.split('/')), redact(url)))
    }
    return { dir, files: out }
  }
  const dir = join(ctx.cacheDir, 's3', p.bucket, ...p.key.split('/'))
  for (const f of files) {
    const key = `${p.key}/${f}`
    out.push(
      await fetchS3To(ctx, opts.s3, p.bucket, key, undefined, join(dir, ...f.split('/')), `s3://${p.bucket}/${key}`)
    )
  }
  return { dir, files: out }
}
