/** @module The `latentbase` command line: the SDK's operations as commands, human tables by default, --json for scripts, documented exit codes. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import {
  AppendFailedError,
  createClient,
  DatasetFailedError,
  LatentbaseError,
  type Dataset,
  type LatentbaseClient
} from './index.ts'
import type { DryRunEstimate } from './llm.ts'
import { firingSummary } from '@latentbase/shared/analysis/firing-summary'
import { timeLeft, type FirstSeen } from '@latentbase/shared/util/time-left'
import { intakeOf } from '@latentbase/shared/util/intake'

/** Exit codes scripts can rely on (docs/clients.md lists them too). */
export const EXIT = {
  ok: 0,
  /** Anything unexpected (a bug, an answer that does not parse). */
  error: 1,
  /** Bad command line: unknown command or option, missing argument. */
  usage: 2,
  /** The API refused the request (400, 409, 413, 422, ...): the problem's detail is printed. */
  refused: 3,
  /** 404: no such dataset, document, job or latent. */
  notFound: 4,
  /** 401 / 403: no API key, or a wrong one. */
  unauthorized: 5,
  /** The server failed (5xx, 503 llm-not-configured included) or could not be reached. */
  unavailable: 6,
  /** `datasets create --wait`: the encoding failed. */
  datasetFailed: 7,
  /** `--wait` ran past `--timeout`. */
  timeout: 8
} as const

class UsageError extends Error {}
class TimeoutError extends Error {}

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean }
  stderr: { write(s: string): unknown; isTTY?: boolean }
  env: Record<string, string | undefined>
}

const GLOBAL_OPTIONS = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsConfig['options']

const GLOBAL_HELP = `Global options:
  --base-url URL    the API (default $LATENTBASE_URL, else http://127.0.0.1:8787)
  --api-key KEY     an API key lb_... (default $LATENTBASE_API_KEY)
  --json            print the API's JSON (for scripts) instead of a table
  -h, --help        help for the command`

const EXIT_HELP = `Exit codes: 0 ok, 1 unexpected error, 2 bad command line, 3 request refused (4xx), 4 not found (404),
5 unauthorized (401/403), 6 server failed or unreachable (5xx), 7 dataset encoding failed (--wait), 8 --wait timed out.`

interface Command {
  usage: string
  summary: string
  options?: ParseArgsConfig['options']
  help?: string
  run(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<unknown>
}

interface Ctx {
  client: LatentbaseClient
  io: Io
  json: boolean
  baseUrl: string
  apiKey?: string
}

const int = (name: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, not "${v}"`)
  return n
}
const num = (name: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${v}"`)
  return n
}
const ints = (name: string, v: unknown): number[] | undefined => {
  if (v === undefined) return undefined
  const list = String(v)
    .split(',')
    .map(s => Number(s.trim()))
  if (list.some(n => !Number.isInteger(n) || n < 0))
    throw new UsageError(`--${name} takes latent ids separated by commas, e.g. 12,40,977`)
  return list
}
/**
 * A slice option (docs/slices.md), passed through as the user wrote it, text or JSON (starting with "{"): the server
 * parses it and answers a bad one with a 400 naming the fault, which the CLI prints (exit 3). Empty: the whole dataset.
 */
const where = (v: unknown): string | undefined => (v === undefined ? undefined : String(v))
/** An unlabelled latent's name in a table: the token it peaks on in its top examples. */
const peakName = (peak: { token: string; count: number; examples: number } | null | undefined) =>
  peak ? `(no label; peaks on "${peak.token}" in ${peak.count}/${peak.examples})` : null

const SLICE_HELP =
  'A slice (docs/slices.md) is text, e.g. \'metadata.model = "x" and latent 12 > 0.5\', or its JSON form \'{"latent":12}\'; quote it for the shell.'
/** `--a-where` and `--b-where` (one per b, or one for all of them) as the API's aWhere / bWhere. */
function sideSlices(bs: string[], v: Record<string, unknown>): { aWhere?: string; bWhere?: string[] } {
  const bWhere = v['b-where'] as string[] | undefined
  if (bWhere && bWhere.length > 1 && bWhere.length !== bs.length)
    throw new UsageError(
      `give one --b-where per b dataset (${bs.length}), or one for all of them; got ${bWhere.length}`
    )
  return { aWhere: where(v['a-where']), bWhere: bWhere?.length === 1 ? bs.map(() => bWhere[0]) : bWhere }
}
async function printEstimate(ctx: Ctx, e: DryRunEstimate): Promise<void> {
  if (ctx.json) return void ctx.io.stdout.write(JSON.stringify(e, null, 2) + '\n')
  ctx.io.stdout.write(
    `estimate (nothing spent): ${e.calls} calls to ${e.model}, ${e.inputTokens} input and ${e.outputTokens} output tokens, cost ${e.cost === null ? 'unknown (no price configured)' : `${e.cost.toFixed(4)} ${e.currency}`}\n`
  )
}
/** A document's text for a terminal: runs of blank lines folded, at most 1,200 characters. */
function shortText(text: string): string {
  const folded = text.replace(/\n\s*\n(\s*\n)+/g, '\n\n').trim()
  return folded.length > 1200 ? `${folded.slice(0, 1199)}…` : folded
}

/** Tokens t-8..t+8 as text, token t in [brackets], on one line. */
function inContext(tokens: readonly string[], t: number): string {
  const text = (from: number, to: number) =>
    tokens.slice(Math.max(0, from), Math.max(0, to)).join('').replace(/\s+/g, ' ')
  return `${t > 8 ? '…' : ''}${text(t - 8, t)}[${text(t, t + 1)}]${text(t + 1, t + 9)}${t + 9 < tokens.length ? '…' : ''}`
}

function need(args: string[], n: number, what: string): void {
  if (args.length < n) throw new UsageError(`missing ${what}`)
}

/** A plain text table: columns padded to their widest cell, long cells cut. */
export function table(rows: Array<Record<string, unknown>>, columns: string[], maxWidth = 60): string {
  const cell = (v: unknown) => {
    const s =
      v === null || v === undefined
        ? ''
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? String(v)
            : v.toPrecision(4)
          : String(v)
    const flat = s.replace(/\s+/g, ' ')
    return flat.length > maxWidth ? `${flat.slice(0, maxWidth - 1)}…` : flat
  }
  const cells = rows.map(r => columns.map(c => cell(r[c])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map(r => r[i].length)))
  const line = (r: string[]) =>
    r
      .map((s, i) => s.padEnd(widths[i]))
      .join('  ')
      .trimEnd()
  return [line(columns), ...cells.map(line)].join('\n') + '\n'
}

function progressOf(d: Dataset): string {
  const docs = d.progress.documents
  const pct = docs.total ? Math.floor((100 * docs.done) / docs.total) : null
  return `${d.status}${pct === null ? '' : ` ${pct}%`} ${docs.done}${docs.total ? `/${docs.total}` : ''} documents, ${d.progress.tokens} tokens`
}

function bar(d: Dataset, width = 30): string {
  const { done, total } = d.progress.documents
  const f = total ? Math.min(1, done / total) : 0
  const filled = Math.round(f * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progressOf(d)}`
}

/** A local file given to `datasets create` is uploaded (POST /uploads); the dataset reads it from the upload:// URL it gets. */
export async function sourceForLocalFile(client: LatentbaseClient, path: string): Promise<string> {
  const bytes = await readFile(path)
  const upload = await client.uploads.create(new Uint8Array(bytes), { filename: basename(path) })
  return upload.url
}

async function sourceArg(ctx: Ctx, arg: string): Promise<string> {
  if (/^(https?|file|s3|hf|upload):\/\//i.test(arg)) return arg
  const info = await stat(arg).catch(() => null)
  if (info?.isFile()) return sourceForLocalFile(ctx.client, arg)
  throw new UsageError(`"${arg}" is neither a URL (https://..., hf://datasets/..., file://...) nor a file`)
}

/** The source spec of `datasets create` and `datasets append` from their options. */
function sourceSpecOf(url: string, v: Record<string, unknown>) {
  return {
    url,
    ...(v.format ? { format: v.format as 'jsonl' } : {}),
    ...(v['text-field'] ? { textField: String(v['text-field']) } : {}),
    ...(v['id-field'] ? { idField: String(v['id-field']) } : {}),
    ...(v['metadata-field'] ? { metadataFields: v['metadata-field'] as string[] } : {}),
    ...(v['messages-field'] ? { messagesField: String(v['messages-field']) } : {}),
    ...(v['pool-roles'] ? { poolRoles: poolRolesArg(String(v['pool-roles'])) } : {}),
    ...(v['max-documents'] !== undefined ? { maxDocuments: int('max-documents', v['max-documents']) } : {}),
    ...(v['sample-seed'] !== undefined ? { sampleSeed: int('sample-seed', v['sample-seed']) } : {})
  }
}

/** `--pool-roles user,assistant`: whose chat turns are pooled. */
function poolRolesArg(v: string): string[] {
  const roles = v
    .split(',')
    .map(r => r.trim())
    .filter(Boolean)
  if (!roles.length) throw new UsageError('--pool-roles names chat roles, e.g. --pool-roles user or user,assistant')
  return roles
}

/** What the source lost on the way in: records skipped (by reason) and documents cut at the encoder's token limit. */
function intakeLines(stats: NonNullable<Dataset['stats']>): string[][] {
  const { skipped, reasons, truncated } = intakeOf(stats)
  return [
    ...(skipped ? [['skipped', `${skipped} records (${reasons.map(([r, n]) => `${r} ${n}`).join(', ')})`]] : []),
    ...(truncated ? [['truncated', `${truncated} documents cut at the encoder's maxTokens`]] : [])
  ]
}

async function printDataset(ctx: Ctx, d: Dataset & { webhookSecret?: string }): Promise<void> {
  if (ctx.json) return void ctx.io.stdout.write(JSON.stringify(d, null, 2) + '\n')
  const lines = [
    ['id', d.id],
    ['name', d.name],
    ['status', d.status],
    ['encoder', d.encoder],
    ['progress', progressOf(d)],
    ['created', d.createdAt],
    ...(d.version
      ? [
          [
            'version',
            `${d.version} (${(d.versions ?? []).map(v => `v${v.version}: ${v.documents.count}`).join(', ')} documents)`
          ]
        ]
      : []),
    ...(d.append
      ? [
          [
            'append',
            `version ${d.append.version} ${d.append.status}${d.append.error ? ` (${d.append.error.code}: ${d.append.error.message})` : ''}`
          ]
        ]
      : []),
    ...(d.watch
      ? [
          [
            'watch',
            `against ${d.watch.against}, minDifference ${d.watch.minDifference}, maxQValue ${d.watch.maxQValue}${d.watch.latents ? `, latents ${d.watch.latents.join(',')}` : ''}`
          ]
        ]
      : []),
    ...(d.stats
      ? [
          ['documents', d.stats.documents],
          ['tokens', d.stats.tokens],
          ['active latents', d.stats.activeLatents],
          ...intakeLines(d.stats)
        ]
      : []),
    ...(d.error ? [['error', `${d.error.code}: ${d.error.message}`]] : []),
    ...(d.webhookSecret ? [['webhook secret', `${d.webhookSecret} (shown once)`]] : [])
  ] as Array<[string, unknown]>
  ctx.io.stdout.write(lines.map(([k, v]) => `${k.padEnd(15)} ${v}`).join('\n') + '\n')
}

/** `, about N left` while a dataset encodes, at the rate seen since the first progress with some done (see timeLeft). */
export function etaOf(first: FirstSeen | null, d: Dataset, now: number): string {
  if (d.status !== 'running') return ''
  const left = timeLeft(first, d.progress.documents.done, d.progress.documents.total, now)
  return left ? `, ${left}` : ''
}

async function waitFor(ctx: Ctx, id: string, timeoutSeconds: number, now: () => number = Date.now): Promise<Dataset> {
  const tty = Boolean(ctx.io.stderr.isTTY)
  let last = ''
  let first: FirstSeen | null = null
  try {
    const ready = await ctx.client.datasets.waitUntilReady(id, {
      timeoutMs: timeoutSeconds * 1000,
      onProgress: d => {
        if (!first && d.status === 'running' && d.progress.documents.done > 0)
          first = { at: now(), done: d.progress.documents.done }
        const eta = etaOf(first, d, now())
        // A bar redrawn in place on a terminal; one line per change otherwise (logs, CI).
        if (tty) ctx.io.stderr.write(`\r${bar(d)}${eta}\x1b[K`)
        else if (progressOf(d) !== last) ctx.io.stderr.write(`${id} ${progressOf(d)}${eta}\n`)
        last = progressOf(d)
      }
    })
    if (tty) ctx.io.stderr.write('\n')
    return ready
  } catch (err) {
    if (tty) ctx.io.stderr.write('\n')
    if (
      err instanceof Error &&
      !(err instanceof DatasetFailedError) &&
      !(err instanceof LatentbaseError) &&
      /not ready after/.test(err.message)
    ) {
      throw new TimeoutError(err.message)
    }
    throw err
  }
}

/** How a latent list without q is ordered, in words. */
const SORT_WORDS = {
  frequent: 'most frequent first',
  rare: 'rarest first',
  max: 'largest max first',
  mean: 'largest mean first',
  npmi: 'most tied to the slice first (NPMI)'
}

const COMMANDS: Record<string, Command> = {
  'datasets create': {
    usage:
      'datasets create <url|file> [--name NAME] [--encoder ID] [--format F] [--text-field F] [--id-field F] [--metadata-field F]... [--messages-field F [--pool-roles R,R]] [--max-documents N [--sample-seed S]] [--wait [--timeout S]]',
    summary: 'queue a dataset for encoding from a URL',
    options: {
      name: { type: 'string' },
      encoder: { type: 'string' },
      format: { type: 'string' },
      'text-field': { type: 'string' },
      'id-field': { type: 'string' },
      'metadata-field': { type: 'string', multiple: true },
      'messages-field': { type: 'string' },
      'pool-roles': { type: 'string' },
      'max-documents': { type: 'string' },
      'sample-seed': { type: 'string' },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string' }
    },
    help: "A URL may be a Hugging Face dataset (hf://datasets/owner/name). --pool-roles: with --messages-field, whose chat turns are pooled (default the assistant's). --max-documents N: encode the first N documents, or with --sample-seed S a seeded uniform sample of N. With --wait, shows a progress bar (on a terminal; lines otherwise, on stderr) and prints the ready dataset.",
    async run(ctx, args, v) {
      need(args, 1, 'the dataset source: a URL')
      const url = await sourceArg(ctx, args[0])
      const created = await ctx.client.datasets.create({
        ...(v.name ? { name: String(v.name) } : {}),
        ...(v.encoder ? { encoder: String(v.encoder) } : {}),
        source: sourceSpecOf(url, v)
      })
      if (!v.wait) return printDataset(ctx, created)
      return printDataset(ctx, await waitFor(ctx, created.id, num('timeout', v.timeout) ?? 3600))
    }
  },
  'datasets append': {
    usage:
      'datasets append <id> <url|file> [--format F] [--text-field F] [--id-field F] [--metadata-field F]... [--messages-field F [--pool-roles R,R]] [--max-documents N [--sample-seed S]] [--wait [--timeout S]]',
    summary: 'append documents to a ready dataset as a new version (analyses take <id>@<version>)',
    options: {
      format: { type: 'string' },
      'text-field': { type: 'string' },
      'id-field': { type: 'string' },
      'metadata-field': { type: 'string', multiple: true },
      'messages-field': { type: 'string' },
      'pool-roles': { type: 'string' },
      'max-documents': { type: 'string' },
      'sample-seed': { type: 'string' },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string' }
    },
    help: "Without --pool-roles the batch pools the dataset's chat roles. With --wait, waits until the new version is committed and prints the dataset (exit 7 when the batch failed).",
    async run(ctx, args, v) {
      need(args, 2, 'the dataset id and the source of the batch: a URL or a file')
      const url = await sourceArg(ctx, args[1])
      const pending = await ctx.client.datasets.append(args[0], {
        source: sourceSpecOf(url, v)
      })
      if (!v.wait) return printDataset(ctx, pending)
      return printDataset(
        ctx,
        await ctx.client.datasets.waitForVersion(args[0], pending.append!.version, {
          timeoutMs: (num('timeout', v.timeout) ?? 3600) * 1000
        })
      )
    }
  },
  'datasets watch': {
    usage: 'datasets watch <id> [--against previous|N] [--latents 1,2,3] [--min-difference X] [--max-q Q] | --off',
    summary:
      'set (or with --off remove) the drift watch: each appended version is diffed against a baseline and a dataset.drift webhook names the latents that moved',
    options: {
      against: { type: 'string' },
      latents: { type: 'string' },
      'min-difference': { type: 'string' },
      'max-q': { type: 'string' },
      off: { type: 'boolean', default: false }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      if (v.off) return printDataset(ctx, await ctx.client.datasets.update(args[0], { watch: null }))
      const against =
        v.against === undefined || v.against === 'previous' ? ('previous' as const) : num('against', v.against)!
      const latents =
        v.latents === undefined
          ? undefined
          : String(v.latents)
              .split(',')
              .map(l => num('latents', l)!)
      return printDataset(
        ctx,
        await ctx.client.datasets.update(args[0], {
          watch: {
            against,
            ...(latents ? { latents } : {}),
            minDifference: num('min-difference', v['min-difference']),
            maxQValue: num('max-q', v['max-q'])
          }
        })
      )
    }
  },
  'datasets list': {
    usage: 'datasets list',
    summary: 'datasets, newest first',
    async run(ctx) {
      const list = await ctx.client.datasets.list()
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(list, null, 2) + '\n')
      ctx.io.stdout.write(
        table(
          list.map(d => ({
            id: d.id,
            name: d.name,
            status: d.status,
            documents: d.stats?.documents ?? d.progress.documents.done,
            encoder: d.encoder,
            created: d.createdAt
          })),
          ['id', 'name', 'status', 'documents', 'encoder', 'created']
        )
      )
    }
  },
  'datasets get': {
    usage: 'datasets get <id> [--wait [--timeout S]]',
    summary: "a dataset's status, progress, stats or error",
    options: { wait: { type: 'boolean', default: false }, timeout: { type: 'string' } },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      return printDataset(
        ctx,
        v.wait ? await waitFor(ctx, args[0], num('timeout', v.timeout) ?? 3600) : await ctx.client.datasets.get(args[0])
      )
    }
  },
  'datasets facets': {
    usage: 'datasets facets <id>',
    summary: "the dataset's metadata values to slice by, with their documents",
    help: 'Each few-valued metadata key (at most 32 values) with its values, their documents and mean length, and the slice selecting them (for --a-where, --b-where, --where). A diff of such a slice is added up from stored counts.',
    async run(ctx, args) {
      need(args, 1, 'the dataset id')
      const facets = await ctx.client.datasets.facets(args[0])
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(facets, null, 2) + '\n')
      const rows = facets.fields.flatMap(f =>
        f.values.map(v => ({ where: v.where, documents: v.documents, meanTokens: v.meanTokens.toFixed(1) }))
      )
      const notes = [
        ...(facets.stored ? [] : ['this dataset was encoded before facets were written: slices are counted from rows']),
        ...facets.fields.filter(f => f.missing).map(f => `${f.missing} documents have no ${f.field}`),
        ...(facets.other.length ? [`not facets (too many values): ${facets.other.join(', ')}`] : [])
      ]
      ctx.io.stdout.write(
        (rows.length ? table(rows, ['where', 'documents', 'meanTokens'], 80) : 'no facets\n') +
          notes.map(n => `${n}\n`).join('')
      )
    }
  },
  'datasets delete': {
    usage: 'datasets delete <id>',
    summary: 'delete a dataset',
    async run(ctx, args) {
      need(args, 1, 'the dataset id')
      await ctx.client.datasets.delete(args[0])
      ctx.io.stdout.write(ctx.json ? JSON.stringify({ deleted: args[0] }) + '\n' : `deleted ${args[0]}\n`)
    }
  },
  diff: {
    usage:
      'diff <a> <b> [b...] [--a-where SLICE] [--b-where SLICE]... [--limit N] [--direction a|b|both] [--metric absolute|relative] [--min-frequency F] [--max-frequency F] [--latents 1,2] [--pair-by FIELD] [--control-length] [--peaks unlabelled|all|none]',
    summary: 'latents that fire more in dataset a than in the b datasets',
    help: `--a-where restricts a to a slice; --b-where once per b, in order (one --b-where for several b applies to each; '' is a whole dataset). a and b may be one dataset with two slices; with --a-where and no --b-where, a b that is a's own dataset is the rest of it. A latent without a label is shown by the token it peaks on in its top examples (--peaks all for every latent, none to skip reading examples).\n${SLICE_HELP}`,
    options: {
      'a-where': { type: 'string' },
      'b-where': { type: 'string', multiple: true },
      limit: { type: 'string' },
      direction: { type: 'string' },
      metric: { type: 'string' },
      'min-frequency': { type: 'string' },
      'max-frequency': { type: 'string' },
      latents: { type: 'string' },
      'pair-by': { type: 'string' },
      'control-length': { type: 'boolean' },
      peaks: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 2, 'two dataset ids: diff <a> <b> [b...]')
      const diff = await ctx.client.diff({
        a: args[0],
        b: args.slice(1),
        ...sideSlices(args.slice(1), v),
        limit: int('limit', v.limit),
        direction: v.direction as 'a' | undefined,
        metric: v.metric as 'absolute' | undefined,
        minFrequency: num('min-frequency', v['min-frequency']),
        maxFrequency: num('max-frequency', v['max-frequency']),
        latents: ints('latents', v.latents),
        pairBy: v['pair-by'] as string | undefined,
        controlLength: v['control-length'] as boolean | undefined,
        peaks: v.peaks as 'unlabelled' | undefined
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(diff, null, 2) + '\n')
      const side = (s: { name: string; where?: string }) => (s.where ? `${s.name} [${s.where}]` : s.name)
      ctx.io.stdout.write(
        `${side(diff.a)} (${diff.a.documents} documents) vs ${diff.b.map(b => `${side(b)} (${b.documents})`).join(', ')}; ${diff.design}, ${diff.tested} latents tested\n`
      )
      ctx.io.stdout.write(
        table(
          diff.latents.map(l => ({
            latent: l.latent,
            freqA: l.frequencyA,
            freqB: l.frequencyB,
            difference: l.difference,
            ci95: `${l.ci95[0].toFixed(3)}..${l.ci95[1].toFixed(3)}`,
            q: l.qValue,
            label: l.label ?? peakName(l.peak)
          })),
          ['latent', 'freqA', 'freqB', 'difference', 'ci95', 'q', 'label']
        )
      )
    }
  },
  latents: {
    usage:
      'latents <dataset> [text...] [--q TEXT | --sort frequent|rare|max|mean|npmi] [--where SLICE] [--limit N] [--offset N]',
    summary: "a dataset's latents: most frequent first, or closest to a text by label",
    help: `text (the words after the dataset) or --q: rank by how close each label is to it (unlabelled latents never match).\n--sort: without --q, most frequent first (default), rarest, largest max or largest mean first; npmi (with --where): most tied to the slice first, e.g. --where 'latent 12' --sort npmi for the latents that fire with latent 12.\n--where: the latents of a slice, with its own frequencies.\n${SLICE_HELP}`,
    options: {
      q: { type: 'string' },
      sort: { type: 'string' },
      where: { type: 'string' },
      limit: { type: 'string' },
      offset: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      if (args.length > 1 && v.q !== undefined) throw new UsageError('give the text either after the dataset or as --q')
      const q = args.length > 1 ? args.slice(1).join(' ') : v.q === undefined ? undefined : String(v.q)
      const list = await ctx.client.latents.list({
        dataset: args[0],
        ...(q === undefined ? {} : { q }),
        ...(v.sort === undefined ? {} : { sort: String(v.sort) as 'frequent' }),
        where: where(v.where),
        limit: int('limit', v.limit),
        offset: int('offset', v.offset)
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(list, null, 2) + '\n')
      ctx.io.stdout.write(
        `${list.latents.length} of ${list.total} latents of ${list.dataset}${list.where ? ` [${list.where}]` : ''} (${list.documents} documents)${list.q ? `, closest to "${list.q}"` : `, ${SORT_WORDS[list.sort ?? 'frequent']}`}\n`
      )
      ctx.io.stdout.write(
        table(
          list.latents.map(l => ({
            latent: l.latent,
            frequency: l.frequency,
            documents: l.documents,
            max: l.max,
            ...(list.q ? { similarity: l.similarity } : {}),
            label: l.label ?? (l.peak ? `(no label; peaks on "${l.peak.token}")` : '(no label)')
          })),
          ['latent', 'frequency', 'documents', 'max', ...(list.q ? ['similarity'] : []), 'label'],
          80
        )
      )
    }
  },
  latent: {
    usage:
      'latent <n> --dataset ID [--where SLICE] [--examples N] [--text] [--intervals N [--per-interval N] [--seed S]]',
    summary: "a latent's page: label, frequency, top examples",
    help: `--where: the page of a slice (statistics over its documents, the stored top examples that fall in it, and the slice's own strongest documents). --intervals N: also documents sampled from N equal-width intervals of the latent's value (--per-interval each, default 3), with their token windows where the server holds the encoder: what the latent does below its top examples.\n${SLICE_HELP}`,
    options: {
      dataset: { type: 'string' },
      where: { type: 'string' },
      examples: { type: 'string' },
      text: { type: 'boolean' },
      intervals: { type: 'string' },
      'per-interval': { type: 'string' },
      seed: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the latent id')
      if (!v.dataset) throw new UsageError('missing --dataset ID')
      const latent = int('latent', args[0])!
      const page = await ctx.client.latents.get(String(v.dataset), latent, {
        examples: int('examples', v.examples),
        text: v.text as boolean | undefined,
        where: where(v.where)
      })
      const spread =
        v.intervals === undefined
          ? null
          : await ctx.client.latents.intervals(String(v.dataset), latent, {
              intervals: int('intervals', v.intervals),
              perInterval: int('per-interval', v['per-interval']),
              seed: int('seed', v.seed),
              where: where(v.where)
            })
      if (ctx.json)
        return ctx.io.stdout.write(JSON.stringify(spread ? { page, intervals: spread } : page, null, 2) + '\n')
      ctx.io.stdout.write(
        `latent ${page.latent}: ${page.label ?? peakName(firingSummary(page.topExamples)) ?? '(no label)'}\nin ${page.documents} documents of ${page.dataset}${page.where ? ` [${page.where}]` : ''} (frequency ${page.frequency.toPrecision(3)}), max ${page.max.toPrecision(3)}\n`
      )
      ctx.io.stdout.write(
        table(
          page.topExamples.map(e => ({
            rank: e.rank,
            row: e.row,
            id: e.id,
            value: e.value,
            window: e.tokens.map((t, i) => (i === e.position - e.windowStart ? `[${t}]` : t)).join('')
          })),
          ['rank', 'row', 'id', 'value', 'window'],
          80
        )
      )
      if (page.sliceStrongest) {
        ctx.io.stdout.write(`strongest in the slice (${page.sliceStrongest.length}):\n`)
        ctx.io.stdout.write(
          table(
            page.sliceStrongest.map(s => ({ row: s.row, id: s.id, value: s.value, position: s.position })),
            ['row', 'id', 'value', 'position'],
            80
          )
        )
      }
      if (spread) {
        ctx.io.stdout.write(
          `across its values (${spread.documents} documents${spread.windows ? '' : '; no windows: the server holds no encoder'}):\n`
        )
        ctx.io.stdout.write(
          table(
            spread.intervals.flatMap((iv): Array<Record<string, unknown>> => {
              const interval = `(${iv.from.toPrecision(3)}, ${iv.to.toPrecision(3)}]`
              if (!iv.examples.length) return [{ interval, docs: iv.documents, row: '', value: '', window: '' }]
              return iv.examples.map(e => {
                const peak = e.activations ? e.activations.indexOf(Math.max(...e.activations)) : -1
                return {
                  interval,
                  docs: iv.documents,
                  row: e.row,
                  value: e.value,
                  window: e.tokens ? e.tokens.map((t, i) => (i === peak ? `[${t}]` : t)).join('') : e.snippet
                }
              })
            }),
            ['interval', 'docs', 'row', 'value', 'window'],
            80
          )
        )
      }
    }
  },
  search: {
    usage: 'search <dataset> [query...] [--where SLICE] [--method sae|bm25|hybrid] [--latents 1,2] [--k N] [--limit N]',
    summary: 'documents with a property',
    help: `--where: rank only a slice's documents.\n${SLICE_HELP}`,
    options: {
      where: { type: 'string' },
      method: { type: 'string' },
      latents: { type: 'string' },
      k: { type: 'string' },
      limit: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      const q = args.slice(1).join(' ') || undefined
      if (!q && !v.latents) throw new UsageError('give a query (words) or --latents')
      const result = await ctx.client.search({
        dataset: args[0],
        where: where(v.where),
        q,
        method: v.method as 'sae' | undefined,
        latents: ints('latents', v.latents),
        k: int('k', v.k),
        limit: int('limit', v.limit)
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      ctx.io.stdout.write(
        `${result.matched} documents match (${result.method}${result.where ? `, in ${result.where}` : ''})${result.latents.length ? `; latents ${result.latents.map(l => l.latent).join(', ')}` : ''}\n`
      )
      ctx.io.stdout.write(
        table(
          result.results.map(r => ({
            row: r.row,
            id: r.id,
            score: r.score,
            // sae and hybrid: the latents that make most of the hit's score, with their shares.
            by: (r.latents ?? []).map(l => `#${l.latent} ${Math.round(l.share * 100)}%`).join(' '),
            snippet: r.snippet
          })),
          result.results.some(r => r.latents?.length)
            ? ['row', 'id', 'score', 'by', 'snippet']
            : ['row', 'id', 'score', 'snippet'],
          70
        )
      )
    }
  },
  document: {
    usage: 'document <dataset> <row> [--latents 1,2] [--limit N]',
    summary: 'one document: its text and strongest latents, or where chosen latents fire in it',
    help: `Without --latents: the text, metadata and the --limit strongest latents (default 15) with the token each peaks on.\n--latents: the document re-encoded token by token (a server that holds the encoder, such as the local one) and, per latent, its strongest tokens in context, the firing token in [brackets].`,
    options: {
      latents: { type: 'string' },
      limit: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 2, 'the dataset id and a row: document <dataset> <row>')
      const row = int('row', args[1])!
      const latents = ints('latents', v.latents)
      const limit = int('limit', v.limit) ?? 15
      if (latents?.length) {
        const shown = await ctx.client.documents.activations(args[0], row, latents)
        if (ctx.json) return ctx.io.stdout.write(JSON.stringify(shown, null, 2) + '\n')
        const lines = [
          `${shown.id} (row ${shown.row}), ${shown.tokens.length} tokens${shown.truncated ? ', truncated' : ''}`
        ]
        for (const l of shown.latents) {
          if (l.position < 0) {
            lines.push(`latent ${l.latent}: does not fire in this document${l.label ? ` (${l.label})` : ''}`)
            continue
          }
          const firing = l.activations.filter(a => a > 0).length
          lines.push(
            `latent ${l.latent}: max ${l.max} at token ${l.position}, fires on ${firing} of ${shown.tokens.length} tokens`
          )
          if (l.label) lines.push(`  label: ${l.label}`)
          const strongest = l.activations
            .map((a, t) => [a, t] as const)
            .filter(([a]) => a > 0)
            .sort((x, y) => y[0] - x[0])
            .slice(0, Math.min(limit, 5))
          for (const [a, t] of strongest) lines.push(`  ${a.toPrecision(3).padStart(8)}  ${inContext(shown.tokens, t)}`)
        }
        return ctx.io.stdout.write(lines.join('\n') + '\n')
      }
      const doc = await ctx.client.documents.get(args[0], row)
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(doc, null, 2) + '\n')
      const meta = Object.keys(doc.metadata).length ? `\nmetadata: ${JSON.stringify(doc.metadata)}` : ''
      ctx.io.stdout.write(
        `${doc.id} (row ${doc.row}), ${doc.tokenCount} tokens${doc.truncated ? ', truncated' : ''}, ${doc.latents.length} latents${meta}\n\n${shortText(doc.text)}\n\n`
      )
      ctx.io.stdout.write(
        table(
          doc.latents.slice(0, limit).map(l => ({
            latent: l.latent,
            value: l.value,
            frequency: l.frequency,
            token: l.position,
            label: l.label ?? peakName(l.peak)
          })),
          ['latent', 'value', 'frequency', 'token', 'label']
        )
      )
    }
  },
  text: {
    usage: 'text <dataset> <text...> [--chat] [--top N] [--distinctive] [--latents 1,2]',
    summary: "a text encoded as the dataset's documents were: its strongest latents and where each fires",
    help: `The text is encoded with the dataset's encoder (a server that holds it, such as the local one). Prints its --top strongest latents (default 10, at most 32) with their label, largest activation, the share of the dataset's documents that have them, and the token each peaks on in context; --distinctive ranks by activation x idf in the dataset instead (latents of every document sink); --latents shows chosen ones.\n--chat: the text is a JSON list of { "role", "content" } messages, rendered with the reader's chat template and pooled on the turns the dataset pools.`,
    options: {
      chat: { type: 'boolean' },
      top: { type: 'string' },
      distinctive: { type: 'boolean' },
      latents: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 2, 'the dataset id and a text: text <dataset> <text...>')
      const latents = ints('latents', v.latents)
      if (v.chat) {
        let messages: unknown
        try {
          messages = JSON.parse(args.slice(1).join(' '))
        } catch {
          messages = null
        }
        if (!Array.isArray(messages))
          throw new UsageError('--chat: the text is a JSON list of messages, e.g. \'[{"role":"user","content":"Hi"}]\'')
      }
      const shown = await ctx.client.documents.activationsOfText(args[0], args.slice(1).join(' '), {
        top: int('top', v.top) ?? 10,
        ...(v.chat ? { format: 'chat' as const } : {}),
        ...(v.distinctive ? { order: 'distinctive' as const } : {}),
        ...(latents?.length ? { latents } : {})
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(shown, null, 2) + '\n')
      ctx.io.stdout.write(
        `${shown.tokens.length} tokens${shown.truncated ? ' (truncated)' : ''}, ${shown.present} latents fire; ${latents?.length ? 'asked' : v.distinctive ? 'most distinctive' : 'strongest'}:\n`
      )
      ctx.io.stdout.write(
        table(
          shown.latents.map(l => ({
            latent: l.latent,
            max: l.max,
            inDataset: l.frequency,
            peak: l.position < 0 ? '(does not fire)' : inContext(shown.tokens, l.position),
            label: l.label ?? peakName(l.peak)
          })),
          ['latent', 'max', 'inDataset', 'peak', 'label'],
          50
        )
      )
    }
  },
  similar: {
    usage: 'similar <dataset> [row] [--text TEXT] [--in DATASET] [--where SLICE] [--limit N] [--shared N]',
    summary: 'documents like one document, or like a text, with the latents they share',
    help: `Cosine of the documents' latent sets, each latent weighted by sqrt(ln(n / df)) (as clusters use).\n--text: documents like this text instead of a row: the text is encoded with the dataset's encoder (a server that holds it, such as the local one).\n--in: look in another dataset encoded alike (e.g. the other side of a diff; with a row).\n--shared: latents listed per document (default 5).\n--where: only a slice's documents are candidates.\n${SLICE_HELP}`,
    options: {
      text: { type: 'string' },
      in: { type: 'string' },
      where: { type: 'string' },
      limit: { type: 'string' },
      shared: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      const text = v.text === undefined ? undefined : String(v.text)
      if ((text === undefined) === args.length < 2)
        throw new UsageError(text === undefined ? 'give a document row, or --text' : 'give a row or --text, not both')
      if (text !== undefined && v.in)
        throw new UsageError('--in looks for documents like a row; a text is encoded for its own dataset')
      const opts = { limit: int('limit', v.limit), shared: int('shared', v.shared), where: where(v.where) }
      const result =
        text === undefined
          ? await ctx.client.documents.similar(args[0], int('row', args[1])!, {
              ...opts,
              ...(v.in ? { in: String(v.in) } : {})
            })
          : await ctx.client.documents.like(args[0], text, opts)
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      const asked =
        'row' in result
          ? `${result.id} (row ${result.row})`
          : `"${result.text.length > 40 ? `${result.text.slice(0, 39)}…` : result.text}"`
      const elsewhere = 'in' in result && result.in !== result.dataset ? ` in ${result.in}` : ''
      ctx.io.stdout.write(
        `${result.results.length} documents like ${asked} of ${result.candidates}${elsewhere}${result.where ? ` [${result.where}]` : ''}, by ${result.latents} latents\n`
      )
      ctx.io.stdout.write(
        table(
          result.results.map(r => ({
            row: r.row,
            id: r.id,
            score: r.score,
            shared: r.shared.map(s => `#${s.latent} ${s.label ?? peakName(s.peak) ?? ''}`.trim()).join('; '),
            snippet: r.snippet
          })),
          ['row', 'id', 'score', 'shared', 'snippet'],
          50
        )
      )
    }
  },
  correlations: {
    usage: 'correlations <dataset> [--where SLICE] [--min-npmi X] [--min-count N] [--max-frequency F] [--limit N]',
    summary: 'latent pairs that co-occur (NPMI)',
    help: `--where: pairs within a slice's documents (frequencies, thresholds and NPMI are the slice's own).\n${SLICE_HELP}`,
    options: {
      where: { type: 'string' },
      'min-npmi': { type: 'string' },
      'min-count': { type: 'string' },
      'min-frequency': { type: 'string' },
      'max-frequency': { type: 'string' },
      limit: { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      const result = await ctx.client.correlations({
        dataset: args[0],
        where: where(v.where),
        minNpmi: num('min-npmi', v['min-npmi']),
        minCount: int('min-count', v['min-count']),
        minFrequency: num('min-frequency', v['min-frequency']),
        maxFrequency: num('max-frequency', v['max-frequency']),
        limit: int('limit', v.limit)
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      ctx.io.stdout.write(
        table(
          result.pairs.map(p => ({
            a: p.a.latent,
            b: p.b.latent,
            npmi: p.npmi,
            count: p.count,
            labelA: p.a.label ?? peakName(p.a.peak),
            labelB: p.b.label ?? peakName(p.b.peak)
          })),
          ['a', 'b', 'npmi', 'count', 'labelA', 'labelB'],
          40
        )
      )
    }
  },
  clusters: {
    usage:
      'clusters <dataset> --k N [--where SLICE] [--latents 1,2] [--phrase TEXT]... [--method M] [--similarity S] [--seed N] [--sample-max-docs N]',
    summary: "cluster a dataset's documents",
    help: `--method: spectral (default) or kmeans; --similarity (spectral): cosine (default, sqrt-idf weighted) or jaccard (the paper's).\n--where: cluster only a slice's documents (central documents are dataset rows).\n--sample-max-docs: larger datasets (or slices) are fitted on a seeded sample of this many documents, then every document is assigned to its nearest cluster.\n${SLICE_HELP}`,
    options: {
      where: { type: 'string' },
      k: { type: 'string' },
      latents: { type: 'string' },
      phrase: { type: 'string', multiple: true },
      method: { type: 'string' },
      similarity: { type: 'string' },
      seed: { type: 'string' },
      'sample-max-docs': { type: 'string' }
    },
    async run(ctx, args, v) {
      need(args, 1, 'the dataset id')
      const k = int('k', v.k)
      const sampleMaxDocs = int('sample-max-docs', v['sample-max-docs'])
      if (k === undefined) throw new UsageError('missing --k N (the number of clusters)')
      const result = await ctx.client.clusters({
        dataset: args[0],
        k,
        ...(v.where === undefined ? {} : { where: String(v.where) }),
        latents: ints('latents', v.latents),
        phrases: v.phrase as string[] | undefined,
        method: v.method as 'spectral' | undefined,
        similarity: v.similarity as 'cosine' | undefined,
        seed: int('seed', v.seed),
        ...(sampleMaxDocs === undefined ? {} : { sampleMaxDocs })
      })
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      ctx.io.stdout.write(
        `${result.documents} documents${result.where ? ` of ${result.where}` : ''} in ${result.k} clusters (${result.method}, ${result.similarity}, ${result.latentsUsed.length} latents)\n`
      )
      if (result.fit)
        ctx.io.stdout.write(
          `fitted on a sample of ${result.fit.sample} of ${result.fit.of} documents; the others joined their nearest cluster in ${result.fit.parts} parts\n`
        )
      ctx.io.stdout.write(
        table(
          result.clusters.map(c => ({
            id: c.id,
            size: c.size,
            name: c.name,
            latents: c.latents.map(l => l.latent).join(','),
            central: c.central.join(',')
          })),
          ['id', 'size', 'name', 'latents', 'central']
        )
      )
    }
  },
  hypotheses: {
    usage:
      'hypotheses <a> <b> [b...] [--a-where SLICE] [--b-where SLICE]... [--question Q] [--max N] [--top-latents N] [--dry-run]',
    summary: "hypotheses about how a differs from b, written by the server's LLM from the diff",
    help: `--dry-run prints the estimated calls, tokens and cost and spends nothing. --a-where / --b-where as in diff.\n${SLICE_HELP}`,
    options: {
      'a-where': { type: 'string' },
      'b-where': { type: 'string', multiple: true },
      question: { type: 'string' },
      max: { type: 'string' },
      'top-latents': { type: 'string' },
      'dry-run': { type: 'boolean', default: false }
    },
    async run(ctx, args, v) {
      need(args, 2, 'two dataset ids: hypotheses <a> <b> [b...]')
      const params = {
        a: args[0],
        b: args.slice(1),
        ...sideSlices(args.slice(1), v),
        ...(v.question ? { question: String(v.question) } : {}),
        max: int('max', v.max),
        topLatents: int('top-latents', v['top-latents'])
      }
      if (v['dry-run']) return printEstimate(ctx, await ctx.client.hypotheses.estimate(params))
      const result = await ctx.client.hypotheses.create(params)
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      ctx.io.stdout.write(
        `${result.hypotheses.length} hypotheses (${result.model}); verify on other rows than ${Object.entries(
          result.usedRows
        )
          .map(([id, rows]) => `${id}: ${rows.join(',')}`)
          .join('; ')}\n`
      )
      ctx.io.stdout.write(
        table(
          result.hypotheses.map(h => ({ id: h.id, text: h.text, latents: h.latents.join(',') })),
          ['id', 'text', 'latents'],
          100
        )
      )
    }
  },
  verify: {
    usage:
      'verify <a> <b> --hypothesis TEXT... [--a-where SLICE] [--b-where SLICE] [--per-dataset N] [--judge pair|document] [--seed N] [--dry-run]',
    summary: "judge hypotheses on samples of a and b with the server's LLM (share YES in each, difference, q)",
    help: `--a-where / --b-where judge documents of those slices only (a and b may be one dataset). --dry-run spends nothing.\n${SLICE_HELP}`,
    options: {
      hypothesis: { type: 'string', multiple: true },
      'a-where': { type: 'string' },
      'b-where': { type: 'string' },
      'per-dataset': { type: 'string' },
      judge: { type: 'string' },
      seed: { type: 'string' },
      'dry-run': { type: 'boolean', default: false }
    },
    async run(ctx, args, v) {
      need(args, 2, 'two dataset ids: verify <a> <b>')
      const hypotheses = v.hypothesis as string[] | undefined
      if (!hypotheses?.length) throw new UsageError('give at least one --hypothesis TEXT')
      const params = {
        a: args[0],
        b: args[1],
        hypotheses,
        aWhere: where(v['a-where']),
        bWhere: where(v['b-where']),
        perDataset: int('per-dataset', v['per-dataset']),
        judge: v.judge as 'pair' | undefined,
        seed: int('seed', v.seed)
      }
      if (v['dry-run']) return printEstimate(ctx, await ctx.client.hypotheses.estimateVerify(params))
      const result = await ctx.client.hypotheses.verify(params)
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(result, null, 2) + '\n')
      const side = (s: { id: string; where?: string; judged: number }) =>
        `${s.id}${s.where ? ` [${s.where}]` : ''} (${s.judged} judged)`
      ctx.io.stdout.write(
        `${side(result.a)} vs ${side(result.b)}; ${result.validCount} of ${result.hypotheses.length} valid (${result.model})\n`
      )
      ctx.io.stdout.write(
        table(
          result.hypotheses.map(h => ({
            shareA: h.shareA,
            shareB: h.shareB,
            difference: h.difference,
            ci95: `${h.ci95[0].toFixed(3)}..${h.ci95[1].toFixed(3)}`,
            p: h.adjustedPValue,
            valid: h.valid ? 'yes' : 'no',
            text: h.text
          })),
          ['shareA', 'shareB', 'difference', 'ci95', 'p', 'valid', 'text']
        )
      )
    }
  },
  encoders: {
    usage: 'encoders',
    summary: 'encoders this deployment can use',
    async run(ctx) {
      const list = await ctx.client.encoders.list()
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(list, null, 2) + '\n')
      ctx.io.stdout.write(
        table(
          list.map(e => ({ ...e })),
          ['id', 'hookName', 'dIn', 'dSae', 'architecture', 'labelled', 'maxTokens']
        )
      )
    }
  },
  'keys check': {
    usage: 'keys check',
    summary: 'check that the API key is accepted by the server (exit 5 if not)',
    async run(ctx) {
      await ctx.client.datasets.list()
      ctx.io.stdout.write(
        ctx.json
          ? JSON.stringify({ ok: true, baseUrl: ctx.baseUrl, apiKey: Boolean(ctx.apiKey) }) + '\n'
          : `${ctx.baseUrl} accepts ${ctx.apiKey ? `the API key ${ctx.apiKey.slice(0, 7)}...` : 'requests without an API key'}\n`
      )
    }
  },
  'keys create': {
    usage: 'keys create --tenant NAME [--name LABEL]',
    summary: "make an API key in the deployment's store (DATA_DIR, or BUCKET on S3)",
    options: { tenant: { type: 'string' }, name: { type: 'string' } },
    help: 'Key management is not an API operation: these commands write the store the server reads keys from, so they run where that store is reachable (DATA_DIR=... for a local server, BUCKET=... with AWS credentials for a deployment).',
    async run(ctx, _args, v) {
      if (!v.tenant) throw new UsageError('missing --tenant NAME')
      const { key, hash, record } = await (await keyStore(ctx)).create(String(v.tenant), v.name as string | undefined)
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify({ key, hash, record }) + '\n')
      ctx.io.stdout.write(
        `API key for tenant ${record.tenant} (${record.name}), shown once:\n\n  ${key}\n\nid (sha256, for revoke): ${hash}\n`
      )
    }
  },
  'keys list': {
    usage: 'keys list',
    summary: "API keys in the deployment's store (hashes, tenants, hints)",
    async run(ctx) {
      const list = await (await keyStore(ctx)).list()
      if (ctx.json) return ctx.io.stdout.write(JSON.stringify(list, null, 2) + '\n')
      ctx.io.stdout.write(
        table(
          list.map(({ hash, record }) => ({
            hash,
            tenant: record.tenant,
            name: record.name,
            hint: `${record.hint}...`,
            created: record.createdAt,
            revoked: record.revokedAt ?? ''
          })),
          ['hash', 'tenant', 'name', 'hint', 'created', 'revoked'],
          64
        )
      )
    }
  },
  'keys revoke': {
    usage: 'keys revoke <hash>',
    summary: 'revoke an API key by its id (sha256)',
    async run(ctx, args) {
      need(args, 1, 'the key id (sha256 hash, from keys list)')
      const ok = await (await keyStore(ctx)).revoke(args[0])
      if (!ok)
        throw new LatentbaseError(404, {
          type: 'about:blank',
          title: 'Not Found',
          status: 404,
          detail: `no API key ${args[0]}`,
          code: 'key-not-found'
        })
      ctx.io.stdout.write(ctx.json ? JSON.stringify({ revoked: args[0] }) + '\n' : `revoked ${args[0]}\n`)
    }
  }
}

async function keyStore(ctx: Ctx) {
  // Loaded only here: the S3 client is large, and the other commands only speak HTTP.
  const [{ ApiKeyStore }, { storeFromEnv }] = await Promise.all([
    import('@latentbase/shared/auth/api-keys'),
    import('@latentbase/shared/store/store-from-env')
  ])
  return new ApiKeyStore(storeFromEnv(ctx.io.env))
}

function mainHelp(): string {
  const names = Object.keys(COMMANDS)
  const width = Math.max(...names.map(n => n.length))
  return (
    `latentbase: the Latentbase API from the shell\n\nUsage: latentbase <command> [arguments] [options]\n\nCommands:\n` +
    names.map(n => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`).join('\n') +
    `\n\n${GLOBAL_HELP}\n\nlatentbase <command> --help shows a command's options.\n${EXIT_HELP}\n`
  )
}

function commandHelp(name: string, cmd: Command): string {
  return `Usage: latentbase ${cmd.usage}\n\n${cmd.summary}.${cmd.help ? `\n${cmd.help}` : ''}\n\n${GLOBAL_HELP}\n\n${EXIT_HELP}\n`
}

function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage
  if (err instanceof TimeoutError) return EXIT.timeout
  if (err instanceof DatasetFailedError || err instanceof AppendFailedError) return EXIT.datasetFailed
  if (err instanceof LatentbaseError) {
    if (err.status === 401 || err.status === 403) return EXIT.unauthorized
    if (err.status === 404) return EXIT.notFound
    if (err.status >= 500) return EXIT.unavailable
    return EXIT.refused
  }
  // fetch's network failures (refused, reset, DNS) are TypeErrors with a cause.
  if (err instanceof TypeError && /fetch failed/i.test(err.message)) return EXIT.unavailable
  return EXIT.error
}

/** The worker names source fields as the API spells them; a failure about them says which options set them here. */
function sourceFieldHint(err: unknown): string {
  const error =
    err instanceof DatasetFailedError
      ? err.dataset.error
      : err instanceof AppendFailedError
        ? err.dataset.append?.error
        : undefined
  if (error?.code !== 'wrong-field' || !/textField|messagesField/.test(error.message)) return ''
  return 'On the command line textField is --text-field and messagesField is --messages-field.\n'
}

/**
 * How many positional arguments a command's usage names (`<id>`, `[TOKENS]`; Infinity with a `[word...]` or `<text...>`
 * list):
 * more is a mistake to point out, not words to drop silently.
 */
export function positionalLimit(usage: string): number {
  const words = usage.split(' ')
  const first = words.findIndex(w => w.startsWith('[--') || w.startsWith('--') || w === '|')
  const head = first < 0 ? words : words.slice(0, first)
  if (head.some(w => /^\[[^-].*\.\.\.\]$/.test(w) || /^<.+\.\.\.>$/.test(w))) return Number.POSITIVE_INFINITY
  return head.filter(w => /^<.+>$/.test(w) || /^\[[^-].*\]$/.test(w)).length
}

/** Runs one command line; returns the exit code (the bin calls process.exit with it). */
export async function main(
  argv: string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }
): Promise<number> {
  // Option values are not words: a lenient parse with every option known finds the command wherever options sit.
  const allOptions = Object.assign(
    {},
    GLOBAL_OPTIONS,
    ...Object.values(COMMANDS).map(c => c.options ?? {})
  ) as ParseArgsConfig['options']
  const words = parseArgs({ args: argv, allowPositionals: true, strict: false, options: allOptions }).positionals
  const name = [`${words[0]} ${words[1]}`, words[0]].find(n => n && COMMANDS[n])
  if (!name) {
    if (!words.length || argv.includes('--help') || argv.includes('-h')) {
      io.stdout.write(mainHelp())
      return words.length ? EXIT.usage : argv.length ? EXIT.ok : EXIT.usage
    }
    io.stderr.write(`latentbase: unknown command "${words.slice(0, 2).join(' ')}"\n\n${mainHelp()}`)
    return EXIT.usage
  }
  const cmd = COMMANDS[name]
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { ...GLOBAL_OPTIONS, ...cmd.options }
    })
  } catch (err) {
    io.stderr.write(`latentbase ${name}: ${(err as Error).message}\n\nUsage: latentbase ${cmd.usage}\n`)
    return EXIT.usage
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.stdout.write(commandHelp(name, cmd))
    return EXIT.ok
  }
  const baseUrl = String(values['base-url'] ?? io.env.LATENTBASE_URL ?? 'http://127.0.0.1:8787')
  const apiKey = (values['api-key'] as string | undefined) ?? (io.env.LATENTBASE_API_KEY || undefined)
  const ctx: Ctx = { client: createClient({ baseUrl, apiKey }), io, json: Boolean(values.json), baseUrl, apiKey }
  const args = positionals.slice(name.split(' ').length)
  const allowed = positionalLimit(cmd.usage)
  if (args.length > allowed) {
    io.stderr.write(
      `latentbase ${name}: unexpected argument "${args[allowed]}" (it takes ${allowed === 0 ? 'none' : allowed === 1 ? 'one' : allowed}; options start with --)\n\nUsage: latentbase ${cmd.usage}\n`
    )
    return EXIT.usage
  }
  try {
    await cmd.run(ctx, args, values as Record<string, unknown>)
    return EXIT.ok
  } catch (err) {
    const code = exitCodeOf(err)
    if (ctx.json && err instanceof LatentbaseError) io.stderr.write(JSON.stringify(err.problem) + '\n')
    else if (code === EXIT.usage)
      io.stderr.write(`latentbase ${name}: ${(err as Error).message}\n\nUsage: latentbase ${cmd.usage}\n`)
    else if (code === EXIT.unavailable && !(err instanceof LatentbaseError))
      io.stderr.write(
        `latentbase: cannot reach ${baseUrl}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}\n`
      )
    else io.stderr.write(`latentbase ${name}: ${(err as Error).message}\n${sourceFieldHint(err)}`)
    if (code === EXIT.error && !(err instanceof LatentbaseError)) io.stderr.write(`${(err as Error).stack ?? ''}\n`)
    return code
  }
}
