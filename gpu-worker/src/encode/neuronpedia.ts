/** @module Imports latent labels from Neuronpedia explanation exports (batch-N.jsonl.gz, or the API's JSON array), keeping each label's source. */
import { readFile, writeFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { parseArgs } from 'node:util'
import type { LatentLabels } from './labels.ts'

export interface NeuronpediaOptions {
  /** Keep only explanations of this Neuronpedia model id (e.g. "gpt2-small"); all when left out. */
  modelId?: string
  /** Keep only this SAE id, Neuronpedia's `layer` field (e.g. "8-res-jb"); all when left out. */
  saeId?: string
  /** When a latent has several explanations, the first of these explainer models wins; else the first seen. */
  preferModels?: string[]
}

export interface NeuronpediaImport extends LatentLabels {
  /** Explanations read, and those skipped because they belong to another model or SAE. */
  read: number
  otherSae: number
  /** modelId/layer pairs seen, so a wrong filter can say what the file holds. */
  seen: string[]
}

const MAX_REPORTED = 10

/** Text of a file that may be gzip-compressed (detected by its magic bytes, not its name). */
export function textOf(bytes: Uint8Array): string {
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
  return new TextDecoder().decode(gz ? gunzipSync(bytes) : bytes)
}

/** Whether a labels file is a Neuronpedia export (rows with `index` and `description`) rather than `{ latent, label }`. */
export function looksLikeNeuronpedia(text: string): boolean {
  const first = text.trimStart()
  if (first.startsWith('[')) return true
  const line = first.slice(0, first.indexOf('\n') < 0 ? undefined : first.indexOf('\n'))
  try {
    const row = JSON.parse(line) as Record<string, unknown>
    return typeof row === 'object' && row !== null && 'index' in row && 'description' in row
  } catch {
    return false
  }
}

function rowsOf(text: string, file: string, problems: string[]): Array<{ at: string; row: unknown }> {
  const trimmed = text.trimStart()
  if (trimmed.startsWith('[')) {
    let arr: unknown
    try {
      arr = JSON.parse(trimmed)
    } catch (err) {
      throw new Error(`${file}: not a valid JSON array (${(err as Error).message})`)
    }
    if (!Array.isArray(arr)) throw new Error(`${file}: expected a JSON array of explanations`)
    return arr.map((row, i) => ({ at: `item ${i}`, row }))
  }
  const out: Array<{ at: string; row: unknown }> = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (!line) continue
    try {
      out.push({ at: `line ${i + 1}`, row: JSON.parse(line) })
    } catch {
      problems.push(`line ${i + 1}: not valid JSON`)
    }
  }
  return out
}

/** One latent label per index from explanation rows; bad rows are reported together, each with where it is. */
export function parseNeuronpedia(
  texts: Array<{ text: string; file: string }>,
  dSae: number,
  opts: NeuronpediaOptions = {}
): NeuronpediaImport {
  const labels: (string | null)[] = new Array(dSae).fill(null)
  const sources: (string | null)[] = new Array(dSae).fill(null)
  const rank = new Int32Array(dSae).fill(0x7fffffff)
  const prefer = opts.preferModels ?? []
  const seen = new Set<string>()
  const problems: string[] = []
  let read = 0
  let otherSae = 0
  for (const { text, file } of texts) {
    const local: string[] = []
    for (const { at, row } of rowsOf(text, file, local)) {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        local.push(`${at}: not a JSON object`)
        continue
      }
      const r = row as Record<string, unknown>
      read++
      const modelId = String(r.modelId ?? '')
      const layer = String(r.layer ?? '')
      seen.add(`${modelId}/${layer}`)
      if ((opts.modelId && modelId !== opts.modelId) || (opts.saeId && layer !== opts.saeId)) {
        otherSae++
        continue
      }
      // Neuronpedia writes the latent index as a string.
      const index =
        typeof r.index === 'string' && /^\d+$/.test(r.index)
          ? Number(r.index)
          : typeof r.index === 'number'
            ? r.index
            : NaN
      if (!Number.isInteger(index)) {
        local.push(`${at}: "index" must be a latent number, got ${JSON.stringify(r.index)}`)
        continue
      }
      if (index < 0 || index >= dSae) {
        local.push(
          `${at}: index ${index} is outside 0..${dSae - 1} (is this export for another SAE? it says ${modelId}/${layer})`
        )
        continue
      }
      if (typeof r.description !== 'string' || !r.description.trim()) continue // an empty explanation labels nothing
      const explainer =
        typeof r.explanationModelName === 'string' && r.explanationModelName
          ? r.explanationModelName
          : typeof r.typeName === 'string' && r.typeName
            ? r.typeName
            : 'unknown'
      const p = prefer.indexOf(explainer)
      const score = p < 0 ? prefer.length : p
      if (score >= rank[index]) continue
      rank[index] = score
      labels[index] = r.description.trim()
      sources[index] = `neuronpedia:${explainer}`
    }
    for (const l of local) problems.push(`${file}: ${l}`)
  }
  if (problems.length) {
    const more = problems.length > MAX_REPORTED ? ` (and ${problems.length - MAX_REPORTED} more)` : ''
    throw new Error(
      `Neuronpedia export: ${problems.length} bad row${problems.length > 1 ? 's' : ''}: ${problems.slice(0, MAX_REPORTED).join('; ')}${more}`
    )
  }
  let labelled = 0
  for (const l of labels) if (l !== null) labelled++
  if (read > 0 && labelled === 0 && (opts.modelId || opts.saeId)) {
    throw new Error(
      `no explanation matches ${opts.modelId ?? '*'}/${opts.saeId ?? '*'}; the export holds ${[...seen].slice(0, 5).join(', ')}`
    )
  }
  return { labels, sources, labelled, read, otherSae, seen: [...seen] }
}

export async function readNeuronpedia(
  paths: string[],
  dSae: number,
  opts: NeuronpediaOptions = {}
): Promise<NeuronpediaImport> {
  const texts = await Promise.all(
    paths.map(async file => {
      const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`${file}: cannot be read (${err.code ?? err.message})`)
      })
      return { file, text: textOf(bytes) }
    })
  )
  return parseNeuronpedia(texts, dSae, opts)
}

/** Our labels JSONL ({ latent, label, source } per labelled latent), the format encoder.json's `labels` reads. */
export function labelsJsonl(l: LatentLabels): string {
  let out = ''
  for (let i = 0; i < l.labels.length; i++) {
    if (l.labels[i] === null) continue
    out += JSON.stringify({ latent: i, label: l.labels[i], ...(l.sources[i] ? { source: l.sources[i] } : {}) }) + '\n'
  }
  return out
}

// `npm run labels:import -- --d-sae 24576 --model gpt2-small --sae 8-res-jb --out labels.jsonl batch-0.jsonl.gz ...`
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'd-sae': { type: 'string' },
      model: { type: 'string' },
      sae: { type: 'string' },
      prefer: { type: 'string' },
      out: { type: 'string' }
    }
  })
  const dSae = Number(values['d-sae'])
  if (!positionals.length || !(Number.isInteger(dSae) && dSae > 0) || !values.out) {
    console.error(
      'usage: npm run labels:import -- --d-sae N [--model ID] [--sae LAYER] [--prefer m1,m2] --out labels.jsonl EXPORT_FILES...'
    )
    process.exit(2)
  }
  const r = await readNeuronpedia(positionals, dSae, {
    modelId: values.model,
    saeId: values.sae,
    preferModels: values.prefer?.split(',')
  })
  await writeFile(values.out, labelsJsonl(r))
  console.log(
    `${values.out}: ${r.labelled} of ${dSae} latents labelled from ${r.read} explanations (${r.otherSae} for other SAEs)`
  )
}
