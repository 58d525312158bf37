/**
 * @module Dataset URLs that name a page or a whole dataset rather than a file, resolved to the files to read: Hugging
 * Face Hub datasets (`hf://datasets/owner/name[@revision][/path]`, the dataset's page, its viewer page for a config and
 * split, a file's page) and GitHub file pages. A whole Hub dataset is read from the Parquet files the Hub's dataset
 * viewer converts every dataset to, one config and split at a time.
 */
import { SourceError } from './open-source.ts'

export interface HubOptions {
  /** The Hub (HF_ENDPOINT, as huggingface_hub reads it; default https://huggingface.co). */
  endpoint?: string
  /** The dataset viewer's API (LATENTBASE_HF_DATASETS_SERVER; default https://datasets-server.huggingface.co). */
  datasetsServer?: string
  /** HF_TOKEN: sent to the Hub and the viewer only, for private and gated datasets. */
  token?: string
}

export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HubOptions {
  return {
    ...(env.HF_ENDPOINT ? { endpoint: env.HF_ENDPOINT } : {}),
    ...(env.LATENTBASE_HF_DATASETS_SERVER ? { datasetsServer: env.LATENTBASE_HF_DATASETS_SERVER } : {}),
    ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {})
  }
}

const trimSlash = (s: string) => s.replace(/\/+$/, '')
const endpointOf = (hub: HubOptions) => trimSlash(hub.endpoint ?? 'https://huggingface.co')
const serverOf = (hub: HubOptions) => trimSlash(hub.datasetsServer ?? 'https://datasets-server.huggingface.co')

/** What a source URL names: one file (a URL to fetch as it is), or a Hub dataset's config and split to list. */
export type SourceTarget =
  | { kind: 'file'; url: string }
  | { kind: 'hub-dataset'; dataset: string; config?: string; split?: string }

const REPO = '([A-Za-z0-9][\\w.-]*/[\\w.-]+)'

/** Reads a source URL without any request (a plain file URL or path comes back as it is). */
export function sourceTarget(url: string, hub: HubOptions = {}): SourceTarget {
  const hf = new RegExp(`^hf://datasets/${REPO}(?:@([^/]+))?(?:/(.*))?$`).exec(url)
  if (hf) {
    const [, dataset, revision, path] = hf
    if (!path) return { kind: 'hub-dataset', dataset }
    return { kind: 'file', url: resolveUrl(hub, dataset, decodeURIComponent(revision ?? 'main'), path) }
  }
  const endpoint = endpointOf(hub)
  if (url.startsWith(`${endpoint}/datasets/`)) {
    const rest = url.slice(endpoint.length + '/datasets/'.length).replace(/[?#].*$/, '')
    const m = new RegExp(`^${REPO}(?:/(.*))?$`).exec(rest)
    if (m) {
      const [, dataset, tail = ''] = m
      const parts = tail.split('/').filter(Boolean)
      if (parts.length === 0 || parts[0] === 'tree') return { kind: 'hub-dataset', dataset }
      if (parts[0] === 'viewer')
        return {
          kind: 'hub-dataset',
          dataset,
          ...(parts[1] ? { config: decodeURIComponent(parts[1]) } : {}),
          ...(parts[2] ? { split: decodeURIComponent(parts[2]) } : {})
        }
      // A file's page shows the file inside HTML; its download URL has /resolve/ in place of /blob/.
      if (parts[0] === 'blob' && parts.length >= 3)
        return { kind: 'file', url: `${endpoint}/datasets/${dataset}/resolve/${parts.slice(1).join('/')}` }
    }
  }
  const gh = /^https:\/\/github\.com\/([\w.-]+)\/([\w.-]+)\/blob\/(.+)$/.exec(url)
  if (gh) return { kind: 'file', url: `https://raw.githubusercontent.com/${gh[1]}/${gh[2]}/${gh[3]}` }
  return { kind: 'file', url }
}

function resolveUrl(hub: HubOptions, dataset: string, revision: string, path: string): string {
  const encodedPath = path.split('/').map(encodeURIComponent).join('/')
  return `${endpointOf(hub)}/datasets/${dataset}/resolve/${encodeURIComponent(revision)}/${encodedPath}`
}

/** The Authorization header for a request to the Hub or its viewer, when a token is set (never for other hosts). */
export function hubHeaders(url: string, hub: HubOptions): Record<string, string> {
  if (!hub.token) return {}
  const host = (u: string) => {
    try {
      return new URL(u).host
    } catch {
      return null
    }
  }
  const target = host(url)
  return target && (target === host(endpointOf(hub)) || target === host(serverOf(hub)))
    ? { authorization: `Bearer ${hub.token}` }
    : {}
}

export interface HubListing {
  urls: string[]
  config: string
  split: string
  /** The viewer converted only the split's first part (it does so past 5 GB). */
  partial: boolean
}

interface ViewerFile {
  config: string
  split: string
  url: string
}

/**
 * The Parquet files of one config and split of a Hub dataset: the config asked for, else "default", else the only
 * one; the split asked for, else "train", else the only one. Anything else fails naming the choices and how to give one.
 */
export async function listHubDataset(
  target: Extract<SourceTarget, { kind: 'hub-dataset' }>,
  hub: HubOptions,
  getJson: (url: string, headers: Record<string, string>) => Promise<{ status: number; body: unknown }>
): Promise<HubListing> {
  const { dataset } = target
  const endpoint = endpointOf(hub)
  const listUrl = `${serverOf(hub)}/parquet?dataset=${encodeURIComponent(dataset)}`
  const { status, body } = await getJson(listUrl, hubHeaders(listUrl, hub))
  const viewerError = (body as { error?: unknown } | null)?.error
  if (status === 401 || status === 404) {
    throw new SourceError(
      'http-status',
      `the Hub has no dataset "${dataset}" that this worker may read${hub.token ? '' : ' (a private or gated one needs HF_TOKEN in the worker environment)'}${typeof viewerError === 'string' ? `: ${viewerError}` : ''}`,
      { status }
    )
  }
  if (status < 200 || status >= 300) {
    throw new SourceError(
      'http-status',
      `the Hub's dataset viewer answered HTTP ${status} listing the Parquet files of "${dataset}"${typeof viewerError === 'string' ? ` (${viewerError})` : ''}; give one of its files instead: hf://datasets/${dataset}/<path>`,
      { status }
    )
  }
  const files = ((body as { parquet_files?: ViewerFile[] } | null)?.parquet_files ?? []).filter(
    f => f && typeof f.url === 'string' && typeof f.config === 'string' && typeof f.split === 'string'
  )
  if (files.length === 0) {
    throw new SourceError(
      'unreachable',
      `the Hub has no Parquet conversion of "${dataset}" yet (the dataset viewer converts datasets after upload, and not every one); give one of its files instead: hf://datasets/${dataset}/<path> (listed at ${endpoint}/datasets/${dataset}/tree/main)`
    )
  }
  const viewer = (config: string, split: string) =>
    `${endpoint}/datasets/${dataset}/viewer/${encodeURIComponent(config)}/${encodeURIComponent(split)}`
  const configs = [...new Set(files.map(f => f.config))]
  const config = pick(target.config, configs, 'default')
  if (config === undefined) {
    throw new SourceError(
      'wrong-field',
      target.config
        ? `"${dataset}" has no config "${target.config}"; its configs: ${list(configs)}`
        : `"${dataset}" has several configs (${list(configs)}): name one and a split with its viewer URL, e.g. ${viewer(configs[0], files.find(f => f.config === configs[0])!.split)}`
    )
  }
  const ofConfig = files.filter(f => f.config === config)
  const splits = [...new Set(ofConfig.map(f => f.split))]
  const split = pick(target.split, splits, 'train')
  if (split === undefined) {
    throw new SourceError(
      'wrong-field',
      target.split
        ? `config "${config}" of "${dataset}" has no split "${target.split}"; its splits: ${list(splits)}`
        : `config "${config}" of "${dataset}" has several splits and none is "train" (${list(splits)}): name one, e.g. ${viewer(config, splits[0])}`
    )
  }
  // Files in the viewer's order (0000.parquet, 0001.parquet, ...): the dataset's row order.
  const urls = ofConfig.filter(f => f.split === split).map(f => f.url)
  return { urls, config, split, partial: urls.some(u => u.includes(`/partial-${encodeURIComponent(split)}/`)) }
}

function pick(asked: string | undefined, choices: string[], preferred: string): string | undefined {
  if (asked !== undefined) return choices.includes(asked) ? asked : undefined
  if (choices.includes(preferred)) return preferred
  return choices.length === 1 ? choices[0] : undefined
}

const list = (names: string[]) =>
  names
    .slice(0, 20)
    .map(n => JSON.stringify(n))
    .join(', ') + (names.length > 20 ? `, and ${names.length - 20} more` : '')
