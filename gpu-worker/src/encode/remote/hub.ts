/** @module hf:// parts from a Hugging Face hub: metadata by HEAD, commit pinning, gated-repo messages, offline use of the cache. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cachedPart, exists, once, tooLarge, writeAtomic, type Ctx, type FetchedPart } from './cache.ts'
import { httpOpener, normalizeEtag, send, type Sent } from './http.ts'
import { COMMIT, RemotePartError, SHA1, SHA256, type PartUrl } from './refs.ts'
import { isAbort, transfer } from './transfer.ts'

export type HfPart = Extract<PartUrl, { kind: 'hf' }>

export function hfRoot(ctx: Ctx, p: HfPart): string {
  const [owner, name] = p.repo.split('/')
  return join(ctx.cacheDir, 'hf', `${p.repoType === 'dataset' ? 'datasets--' : ''}${owner}--${name}`)
}

export function hfResolveUrl(ctx: Ctx, p: HfPart, revision: string): string {
  const path = p.path.split('/').map(encodeURIComponent).join('/')
  return `${ctx.endpoint}/${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}/resolve/${encodeURIComponent(revision)}/${path}`
}

export function hfRef(p: HfPart, revision: string, path = p.path): string {
  const rev = revision === 'main' ? '' : `@${encodeURIComponent(revision)}`
  return `hf://${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}${rev}${path ? `/${path}` : ''}`
}

export function hfError(ctx: Ctx, p: HfPart, res: Response): RemotePartError {
  const status = res.status
  const code = res.headers.get('x-error-code') ?? ''
  const page = `${ctx.endpoint}/${p.repoType === 'dataset' ? 'datasets/' : ''}${p.repo}`
  if (status === 401 || status === 403) {
    const why = code === 'GatedRepo' ? 'is gated' : 'is gated, private or does not exist'
    const token = ctx.token
      ? "the HF_TOKEN given has no access to it: accept the model's licence"
      : "set HF_TOKEN to a Hugging Face access token and accept the model's licence"
    return new RemotePartError(
      'auth',
      `cannot fetch ${hfRef(p, p.revision)}: the hub answered ${status}; repo ${p.repo} ${why}: ${token} on its hub page ${page}`,
      { status }
    )
  }
  if (status === 404) {
    if (code === 'RevisionNotFound')
      return new RemotePartError('not-found', `no revision ${p.revision} in repo ${p.repo} (${page})`, { status })
    if (code === 'RepoNotFound')
      return new RemotePartError('not-found', `no repo ${p.repo} on ${ctx.endpoint}`, { status })
    return new RemotePartError('not-found', `no file ${p.path} at revision ${p.revision} of repo ${p.repo}`, { status })
  }
  return new RemotePartError('http', `the hub answered ${status} ${res.statusText} for ${hfRef(p, p.revision)}`, {
    status,
    retryable: status >= 500 || status === 429
  })
}

export interface HfMeta {
  commit: string
  downloadUrl: string
  size?: number
  sha256?: string
  gitSha1?: string
  lfs: boolean
}

/** The hub's metadata for a file: a HEAD on the resolve URL, redirects to the CDN not followed (as huggingface_hub does). */
export async function hfHead(ctx: Ctx, p: HfPart): Promise<HfMeta> {
  const signal = AbortSignal.any([AbortSignal.timeout(ctx.metadataTimeoutMs), ...(ctx.signal ? [ctx.signal] : [])])
  let sent: Sent
  try {
    sent = await send(ctx, 'HEAD', hfResolveUrl(ctx, p, p.revision), {}, { stopOffHost: true, signal })
  } catch (err) {
    if (ctx.signal?.aborted) throw err
    if (isAbort(err) || (err as { name?: string })?.name === 'TimeoutError') {
      throw new RemotePartError(
        'network',
        `the hub at ${ctx.endpoint} did not answer within ${ctx.metadataTimeoutMs} ms`,
        { retryable: true, cause: err }
      )
    }
    throw err
  }
  const { res } = sent
  const location = res.headers.get('location')
  const redirected = res.status >= 300 && res.status < 400 && location !== null
  if (!redirected && !res.ok) throw hfError(ctx, p, res)
  const commit = res.headers.get('x-repo-commit')?.toLowerCase() ?? (COMMIT.test(p.revision) ? p.revision : undefined)
  if (!commit || !COMMIT.test(commit)) {
    throw new RemotePartError(
      'http',
      `the hub gave no commit (X-Repo-Commit) for ${hfRef(p, p.revision)}; is ${ctx.endpoint} a Hugging Face hub?`
    )
  }
  const linked = normalizeEtag(res.headers.get('x-linked-etag'))?.toLowerCase()
  const etag = normalizeEtag(res.headers.get('etag'))?.toLowerCase()
  const sizeHeader = res.headers.get('x-linked-size') ?? (redirected ? null : res.headers.get('content-length'))
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined
  const sha256 = linked && SHA256.test(linked) ? linked : etag && SHA256.test(etag) ? etag : undefined
  const gitSha1 = !sha256 && etag && SHA1.test(etag) ? etag : undefined
  // A file served by the hub itself is fetched at the commit, so a branch that moves mid-download cannot mix versions.
  const downloadUrl = redirected ? new URL(location, sent.url).href : hfResolveUrl(ctx, p, commit)
  return {
    commit,
    downloadUrl,
    lfs: redirected,
    ...(size !== undefined ? { size } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(gitSha1 ? { gitSha1 } : {})
  }
}

export function offline(env: Record<string, string | undefined>): boolean {
  const v = (env.HF_HUB_OFFLINE ?? '').toLowerCase()
  return v === '1' || v === 'true' || v === 'yes' || v === 'on'
}

export async function fetchHf(ctx: Ctx, p: HfPart, ref: string): Promise<FetchedPart> {
  const root = hfRoot(ctx, p)
  const finalFor = (commit: string) => join(root, commit, ...p.path.split('/'))
  const refFile = join(root, 'refs', encodeURIComponent(p.revision))
  const pinned = COMMIT.test(p.revision)
  if (pinned && (await exists(finalFor(p.revision)))) return cachedPart(ctx, finalFor(p.revision), ref, p.revision)

  let meta: HfMeta | undefined
  let failure: string | undefined
  if (offline(ctx.env)) failure = 'HF_HUB_OFFLINE is set'
  else {
    try {
      meta = await hfHead(ctx, p)
    } catch (err) {
      if (!(err instanceof RemotePartError && err.code === 'network')) throw err
      failure = err.message
    }
  }
  if (!meta) {
    const commit = pinned ? p.revision : (await readFile(refFile, 'utf8').catch(() => '')).trim()
    if (COMMIT.test(commit) && (await exists(finalFor(commit)))) {
      ctx.log(`${ref}: ${failure}; using the cached commit ${commit} for ${p.repo}@${p.revision}`)
      return cachedPart(ctx, finalFor(commit), ref, commit)
    }
    throw new RemotePartError('network', `cannot fetch ${ref}: ${failure}, and it is not in the cache at ${root}`)
  }
  const m = meta
  if (!pinned && m.commit !== p.revision) await writeAtomic(refFile, m.commit)
  const final = finalFor(m.commit)
  if (await exists(final)) {
    ctx.log(`${ref}: cached at commit ${m.commit}`)
    return cachedPart(ctx, final, ref, m.commit)
  }
  if (m.size !== undefined && m.size > ctx.maxBytes) throw tooLarge(ref, m.size, ctx.maxBytes)
  return once(final, () =>
    transfer(ctx, {
      label: ref,
      final,
      source: ref,
      revision: m.commit,
      validator: m.sha256 ? `sha256:${m.sha256}` : `commit:${m.commit}`,
      ...(m.size !== undefined ? { expectedSize: m.size } : {}),
      ...(m.sha256 ? { sha256: m.sha256 } : {}),
      ...(m.gitSha1 ? { gitSha1: m.gitSha1 } : {}),
      open: (() => {
        const get = httpOpener(ctx, m.downloadUrl, ref)
        // The hub's own validators are ours (prefixed), not the server's: never send them as If-Range.
        return (offset: number) => get(offset, undefined).then(o => ({ ...o, validator: undefined }))
      })()
    })
  )
}
