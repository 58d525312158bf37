/** @module https:// parts: a cache path from the URL, an optional #sha256= pin, the resumable transfer. */
import { rm } from 'node:fs/promises'
import { cachedPart, exists, once, type Ctx, type FetchedPart } from './cache.ts'
import { httpOpener, redact } from './http.ts'
import { transfer } from './transfer.ts'

export function basenameOf(url: string): string {
  const last = new URL(url).pathname.split('/').filter(Boolean).pop() ?? ''
  let name = ''
  try {
    name = decodeURIComponent(last)
  } catch {
    name = last
  }
  name = name.replace(/[\\/\0]/g, '_')
  return name === '' || name === '.' || name === '..' ? 'download' : name
}

export async function fetchHttpsTo(
  ctx: Ctx,
  url: string,
  sha256: string | undefined,
  final: string,
  label: string
): Promise<FetchedPart> {
  if (await exists(final)) {
    const cached = await cachedPart(ctx, final, redact(url))
    if (sha256 === undefined || cached.sha256 === sha256) return cached
    ctx.log(`${label}: the cached copy has sha256 ${cached.sha256}, not the pinned ${sha256}; fetching again`)
    await rm(final, { force: true })
  } else if (sha256 === undefined) {
    ctx.log(`${label}: no #sha256= pin; the first copy fetched is the one kept`)
  }
  return once(final, () =>
    transfer(ctx, {
      label,
      final,
      source: redact(url),
      ...(sha256 ? { sha256 } : {}),
      open: httpOpener(ctx, url, label)
    })
  )
}
