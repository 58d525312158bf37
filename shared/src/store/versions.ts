/**
 * @module Dataset versions in the store. Version 1 is the dataset as created (its files at the top of the dataset
 * prefix). Appending version N encodes the batch into `versions/NNNNN/` as a self-contained dataset (its own manifest,
 * shards, statistics, top examples; rows continue the numbering), then writes the dataset's manifest as of N to
 * `versions/NNNNN.json` and, last, over `manifest.json`: that switch is the commit point, so a failed append leaves the
 * previous version whole and visible. Every manifest's file keys stay relative to the dataset prefix.
 */
import { Manifest } from '../contract/manifest.ts'
import type { VersionInfo } from '../contract/version-info.ts'
import { DatasetDeletedError, type DatasetStore } from './dataset-store.ts'
import { PreconditionFailedError, type ObjectInfo, type ObjectStore, type PutOptions } from './object-store.ts'
import { layout } from './layout.ts'

const pad = (v: number) => String(v).padStart(5, '0')

export const versionLayout = {
  /** Folder of the files version v (>= 2) added, relative to the dataset prefix. */
  dir: (v: number) => `versions/${pad(v)}/`,
  /** The dataset's manifest as of version v, relative to the dataset prefix (immutable once written). */
  manifest: (v: number) => `versions/${pad(v)}.json`,
  /** Statistics and p90 of the whole dataset as of version v (the batch's own are under dir(v)stats/). */
  datasetStats: (v: number) => `versions/${pad(v)}/dataset/latent-stats.parquet`,
  datasetP90: (v: number) => `versions/${pad(v)}/dataset/latent-p90.f32`,
  datasetTopExamples: (v: number) => `versions/${pad(v)}/dataset/top-examples.parquet`,
  datasetFacets: (v: number) => `versions/${pad(v)}/dataset/facets.bin`
}

/** The version a manifest describes. */
export const versionOf = (m: Pick<Manifest, 'version'>): number => m.version ?? 1

/** Every version of a manifest with its rows, oldest first (a dataset never appended to has one). */
export function versionsOf(m: Manifest): NonNullable<Manifest['versions']> {
  if (m.versions?.length) return m.versions
  return [
    {
      version: 1,
      documents: { start: 0, count: m.documents.count },
      tokens: m.documents.tokens,
      createdAt: m.createdAt,
      dir: '',
      statsKey: m.stats.key
    }
  ]
}

/** The public per-version counts. */
export const versionInfos = (m: Manifest): VersionInfo[] =>
  versionsOf(m).map(({ version, documents, tokens, createdAt }) => ({ version, documents, tokens, createdAt }))

/**
 * The manifest of a dataset at a version (latest when `version` is undefined); null when the dataset is not ready,
 * deleted, or has no such version.
 */
export async function getManifestAt(
  datasets: DatasetStore,
  tenant: string,
  id: string,
  version?: number
): Promise<Manifest | null> {
  const latest = await datasets.getManifest(tenant, id)
  if (!latest || version === undefined || version === versionOf(latest)) return latest
  if (version > versionOf(latest)) return null
  const bytes = await datasets.objects.get(layout.datasetPrefix(tenant, id) + versionLayout.manifest(version))
  return bytes ? datasets.parseManifest(new TextDecoder().decode(bytes)) : null
}

/**
 * Whether a version after `version` was committed (or is being committed): one HEAD. Its manifest under versions/ is
 * written before manifest.json switches, so a reader that memoized version v learns of v + 1 no later than the switch.
 */
export async function hasNewerVersion(
  objects: ObjectStore,
  tenant: string,
  id: string,
  version: number
): Promise<boolean> {
  if (!Number.isInteger(version) || version < 1) return true
  return (await objects.head(layout.datasetPrefix(tenant, id) + versionLayout.manifest(version + 1))) !== null
}

/**
 * Commit version N: its manifest create-only under versions/ (after making sure the previous one is kept there too),
 * then the switch of manifest.json. Idempotent: a re-run finds what it wrote and finishes the switch. Refused when
 * the dataset was deleted; a manifest.json already at N or later is left alone.
 */
export async function commitVersion(datasets: DatasetStore, manifest: Manifest, previous: Manifest): Promise<void> {
  const parsed = Manifest.parse(manifest)
  const { tenant, datasetId: id } = parsed
  const v = versionOf(parsed)
  const prefix = layout.datasetPrefix(tenant, id)
  const objects = datasets.objects
  if (await datasets.isTombstoned(tenant, id)) throw new DatasetDeletedError(tenant, id)
  const putOnce = async (key: string, body: string) => {
    try {
      await objects.put(key, body, { contentType: 'application/json', ifNoneMatch: true })
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err
    }
  }
  await putOnce(prefix + versionLayout.manifest(versionOf(previous)), JSON.stringify(Manifest.parse(previous)))
  await putOnce(prefix + versionLayout.manifest(v), JSON.stringify(parsed))
  const current = await datasets.getManifest(tenant, id)
  if (current && versionOf(current) >= v) return
  if (await datasets.isTombstoned(tenant, id)) throw new DatasetDeletedError(tenant, id)
  await objects.put(layout.manifest(tenant, id), JSON.stringify(parsed), { contentType: 'application/json' })
}

/**
 * The store as the encoding of version `version`'s batch sees it: every key of the dataset (but its record) moved
 * into versions/NNNNN/, so the plan, part and finalize steps encode the batch as a dataset of its own, unchanged.
 */
export class VersionScopedStore implements ObjectStore {
  private readonly root: string
  private readonly dir: string
  private readonly record: string

  constructor(
    readonly inner: ObjectStore,
    tenant: string,
    id: string,
    readonly version: number
  ) {
    this.root = layout.datasetPrefix(tenant, id)
    this.dir = this.root + versionLayout.dir(version)
    this.record = layout.record(tenant, id)
  }

  /** The key in the underlying store. */
  map(key: string): string {
    return key.startsWith(this.root) && key !== this.record ? this.dir + key.slice(this.root.length) : key
  }

  private unmap(key: string): string {
    return key.startsWith(this.dir) ? this.root + key.slice(this.dir.length) : key
  }

  get(key: string): Promise<Uint8Array | null> {
    return this.inner.get(this.map(key))
  }
  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.inner.getRange(this.map(key), start, end)
  }
  head(key: string): Promise<number | null> {
    return this.inner.head(this.map(key))
  }
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    return this.inner.put(this.map(key), body, options)
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(this.map(key))
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    return (await this.inner.list(this.map(prefix))).map(o => ({ ...o, key: this.unmap(o.key) }))
  }
}
