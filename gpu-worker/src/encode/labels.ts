/** @module Reads a latent labels file ({ latent, label, source?, detection? } JSONL, or a Neuronpedia export; gzip or not) into one label per latent. */
import { readFile } from 'node:fs/promises'
import { looksLikeNeuronpedia, parseNeuronpedia, textOf } from './neuronpedia.ts'

export interface LatentLabels {
  /** One entry per latent; null where the latent has no label. */
  labels: (string | null)[]
  /** Where each label came from (e.g. "auto-top-tokens", "neuronpedia"), null when not given. */
  sources: (string | null)[]
  /** Number of latents with a label. */
  labelled: number
  /** Detection score of each label (balanced accuracy, 0.5 = chance), null where the file gives none. */
  detection?: (number | null)[]
}

const MAX_REPORTED = 10

/** Parse labels JSONL. Bad lines are collected and reported together, each with its line number. */
export function parseLabels(text: string, dSae: number, file = 'labels.jsonl'): LatentLabels {
  const labels: (string | null)[] = new Array(dSae).fill(null)
  const sources: (string | null)[] = new Array(dSae).fill(null)
  const detection: (number | null)[] = new Array(dSae).fill(null)
  const seenAt = new Int32Array(dSae)
  const problems: string[] = []
  let labelled = 0
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '') continue
    const at = `line ${i + 1}`
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch {
      problems.push(`${at}: not valid JSON`)
      continue
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      problems.push(`${at}: not a JSON object`)
      continue
    }
    const {
      latent,
      label,
      source,
      detection: score
    } = row as { latent?: unknown; label?: unknown; source?: unknown; detection?: unknown }
    if (typeof latent !== 'number' || !Number.isInteger(latent)) {
      problems.push(`${at}: "latent" must be an integer, got ${JSON.stringify(latent)}`)
      continue
    }
    if (latent < 0 || latent >= dSae) {
      problems.push(`${at}: latent ${latent} is outside 0..${dSae - 1}`)
      continue
    }
    if (label !== null && typeof label !== 'string') {
      problems.push(`${at}: "label" must be a string, got ${JSON.stringify(label)}`)
      continue
    }
    if (source !== undefined && source !== null && typeof source !== 'string') {
      problems.push(`${at}: "source" must be a string`)
      continue
    }
    if (score !== undefined && score !== null && !(typeof score === 'number' && score >= 0 && score <= 1)) {
      problems.push(`${at}: "detection" must be a number in [0, 1], got ${JSON.stringify(score)}`)
      continue
    }
    if (seenAt[latent] !== 0) {
      problems.push(`${at}: latent ${latent} already labelled on line ${seenAt[latent]}`)
      continue
    }
    seenAt[latent] = i + 1
    const clean = typeof label === 'string' && label.trim() !== '' ? label.trim() : null
    labels[latent] = clean
    sources[latent] = typeof source === 'string' ? source : null
    detection[latent] = typeof score === 'number' && clean !== null ? score : null
    if (clean !== null) labelled++
  }
  if (problems.length) {
    const more = problems.length > MAX_REPORTED ? ` (and ${problems.length - MAX_REPORTED} more)` : ''
    throw new Error(
      `${file}: ${problems.length} bad line${problems.length > 1 ? 's' : ''}: ${problems.slice(0, MAX_REPORTED).join('; ')}${more}`
    )
  }
  return { labels, sources, labelled, detection }
}

export async function loadLabels(path: string, dSae: number, displayName = path): Promise<LatentLabels> {
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${displayName}: cannot be read (${err.code ?? err.message})`)
  })
  const text = textOf(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  if (looksLikeNeuronpedia(text)) {
    const { labels, sources, labelled } = parseNeuronpedia([{ text, file: displayName }], dSae)
    return { labels, sources, labelled, detection: new Array<number | null>(dSae).fill(null) }
  }
  return parseLabels(text, dSae, displayName)
}
