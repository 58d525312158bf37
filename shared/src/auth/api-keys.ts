/**
 * @module API keys: each maps to one tenant. Only the key's sha256 is stored (`_auth/api-keys/{sha256}.json`), so a
 * copy of the store hands out no working key; the key itself is shown once, when it is made.
 */
import { z } from 'zod'
import { assertSafeId } from '../store/layout.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { sha256HexAsync as sha256Hex } from '../util/sha256.ts'

export const API_KEY_PREFIX = 'lb_'

export const ApiKeyRecord = z.object({
  tenant: z.string(),
  name: z.string(),
  /** The first characters of the key, to tell keys apart in listings without revealing them. */
  hint: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().optional()
})
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>

/** 32 random bytes, base64url: guessing one is hopeless, and it is safe in a header. */
export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return API_KEY_PREFIX + btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

const keyPath = (hash: string) => `_auth/api-keys/${hash}.json`

export class ApiKeyStore {
  /** Resolved keys, briefly: a request should not cost a store read, but a revocation must take effect soon. */
  private readonly cache = new Map<string, { tenant: string | null; until: number }>()
  constructor(
    private readonly objects: ObjectStore,
    private readonly cacheMs = 30_000,
    private readonly now: () => number = Date.now
  ) {}

  /** A new key for `tenant`; the returned key is the only copy. */
  async create(tenant: string, name = 'default'): Promise<{ key: string; hash: string; record: ApiKeyRecord }> {
    assertSafeId('tenant', tenant)
    const key = generateApiKey()
    const hash = await sha256Hex(key)
    const record: ApiKeyRecord = {
      tenant,
      name,
      hint: key.slice(0, API_KEY_PREFIX.length + 6),
      createdAt: new Date(this.now()).toISOString()
    }
    await this.objects.put(keyPath(hash), JSON.stringify(record), { ifNoneMatch: true })
    return { key, hash, record }
  }

  /** The tenant a key acts for, or null for an unknown, malformed or revoked key. */
  async tenantOf(key: string): Promise<string | null> {
    if (!key.startsWith(API_KEY_PREFIX) || key.length < 20 || key.length > 200) return null
    const hash = await sha256Hex(key)
    const hit = this.cache.get(hash)
    if (hit && hit.until > this.now()) return hit.tenant
    const bytes = await this.objects.get(keyPath(hash))
    let tenant: string | null = null
    if (bytes) {
      const record = ApiKeyRecord.safeParse(JSON.parse(new TextDecoder().decode(bytes)))
      if (record.success && !record.data.revokedAt) tenant = record.data.tenant
    }
    this.cache.set(hash, { tenant, until: this.now() + this.cacheMs })
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!)
    return tenant
  }

  async revoke(hash: string): Promise<boolean> {
    const bytes = await this.objects.get(keyPath(hash))
    if (!bytes) return false
    const record = ApiKeyRecord.parse(JSON.parse(new TextDecoder().decode(bytes)))
    await this.objects.put(keyPath(hash), JSON.stringify({ ...record, revokedAt: new Date(this.now()).toISOString() }))
    this.cache.delete(hash)
    return true
  }

  async list(): Promise<Array<{ hash: string; record: ApiKeyRecord }>> {
    const out: Array<{ hash: string; record: ApiKeyRecord }> = []
    for (const info of await this.objects.list('_auth/api-keys/')) {
      const bytes = await this.objects.get(info.key)
      if (!bytes) continue
      out.push({
        hash: info.key.slice('_auth/api-keys/'.length, -'.json'.length),
        record: ApiKeyRecord.parse(JSON.parse(new TextDecoder().decode(bytes)))
      })
    }
    return out
  }
}
