/**
 * @module Top examples per latent, for highlighting, by a second pass: re-encode only the candidate documents (each
 * latent's top documents from the merged stats) token by token, and keep a window of tokens and activations around
 * the max. The encode job captures them in its own pass (example-capture.ts); this is its fallback for parts encoded
 * without capture, the reference the capture is tested against, and the window miner's engine.
 */
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { ShardFile } from '@latentbase/shared/contract/manifest'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { writeTopExamples } from '@latentbase/shared/store/top-examples/write'
import type { TopExampleColumns } from '@latentbase/shared/store/top-examples/columns'
import type { LatentStats } from '@latentbase/shared/analysis/latent-stats'
import type { LoadedEncoder } from '../encode/runtime.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { packBatch, planBatches } from '../prepare/batches.ts'

/** Tokens kept on each side of the max. */
export const EXAMPLE_HALF_WINDOW = 12

export interface MineOptions {
  objects: ObjectStore
  prefix: string
  encoder: LoadedEncoder
  stats: LatentStats
  documentFiles: ShardFile[]
  perLatent: number
  poolRoles: string[]
  log?: (line: string) => void
}

/** Returns the bytes of examples/top-examples.parquet: (latent, rank, doc, value, position, window_start, tokens, activations). */
export async function mineTopExamples(o: MineOptions): Promise<Uint8Array> {
  const { stats } = o
  const nLatents = stats.nLatents
  const K = stats.topDocs.length / nLatents
  const perLatent = Math.min(o.perLatent, K)
  // doc -> latents (with their rank) for which it is a top document
  const wanted = new Map<number, Array<[latent: number, rank: number]>>()
  for (let s = 0; s < nLatents; s++) {
    for (let r = 0; r < perLatent; r++) {
      const doc = stats.topDocs[s * K + r]
      if (doc < 0 || !(stats.topValues[s * K + r] > 0)) break
      let list = wanted.get(doc)
      if (!list) wanted.set(doc, (list = []))
      list.push([s, r])
    }
  }
  return writeTopExamples(await mineWindows(o, wanted, perLatent))
}

export type MinedWindows = TopExampleColumns

/**
 * Windows of +/- EXAMPLE_HALF_WINDOW tokens around each wanted (document, latent)'s max, with per-token activations:
 * the documents are re-encoded token by token, and only the wanted latents leave the graph. `wanted` maps a
 * document row to its (latent, rank) pairs; ranks are below `ranksPerLatent`.
 */
export async function mineWindows(
  o: Omit<MineOptions, 'stats' | 'perLatent'>,
  wanted: Map<number, Array<[latent: number, rank: number]>>,
  ranksPerLatent: number
): Promise<MinedWindows> {
  const { encoder } = o
  const docs = Int32Array.from(wanted.keys()).sort()
  const out: MinedWindows = {
    latent: [],
    rank: [],
    doc: [],
    value: [],
    position: [],
    windowStart: [],
    tokens: [],
    activations: []
  }
  if (docs.length === 0) return out
  const session = await encoder.createTokenActivationsSession({ selectLatents: true })
  const t0 = performance.now()
  const context = { ...encoder.prepareContext, poolRoles: o.poolRoles }
  const DOCS_PER_READ = 256
  const slot = new Map<number, number>()
  for (let start = 0; start < docs.length; start += DOCS_PER_READ) {
    const rows = Array.from(docs.subarray(start, start + DOCS_PER_READ))
    const columns = await readDocuments(o.objects, o.prefix, o.documentFiles, rows, ['row', 'id', 'text', 'messages'])
    // Every window of these documents, length-bucketed into batches small enough for dense [B, T, S] output.
    const windows: Array<{ w: PreparedDocument['windows'][number]; row: number }> = []
    for (let i = 0; i < columns.row.length; i++) {
      const messages = columns.messages?.[i] ? JSON.parse(String(columns.messages[i])) : undefined
      const prep = prepareDocument(
        { id: String(columns.id[i]), ...(messages ? { messages } : { text: String(columns.text[i]) }), metadata: {} },
        context
      )
      for (const w of prep.windows) windows.push({ w, row: Number(columns.row[i]) })
    }
    const lengths = Int32Array.from(windows, x => x.w.ids.length)
    for (const batchIdx of planBatches(lengths, {
      maxTokensPerBatch: Math.max(2048, encoder.info.maxTokens),
      maxBatchSize: 16
    })) {
      // Only the latents whose top documents are in this batch leave the graph.
      const column = new Map<number, number>()
      for (const i of batchIdx)
        for (const [latent] of wanted.get(windows[i].row)!) if (!column.has(latent)) column.set(latent, column.size)
      const latentIds = Int32Array.from(column.keys())
      const L = latentIds.length
      const batch = {
        ...packBatch(
          Array.from(batchIdx, i => windows[i].w),
          encoder.padTokenId
        ),
        latentIds
      }
      const res = await session.run(batch)
      const T = batch.seqLen
      for (let b = 0; b < batchIdx.length; b++) {
        const { w, row } = windows[batchIdx[b]]
        const base = b * T
        for (const [latent, rank] of wanted.get(row)!) {
          const c = column.get(latent)!
          let bestT = -1
          let bestV = 0
          for (let t = 0; t < w.ids.length; t++) {
            if (!(res.poolMask[base + t] > 0)) continue
            const v = res.activations[(base + t) * L + c]
            if (v > bestV) {
              bestV = v
              bestT = t
            }
          }
          if (bestT < 0) continue
          const lo = Math.max(0, bestT - EXAMPLE_HALF_WINDOW)
          const hi = Math.min(w.ids.length, bestT + EXAMPLE_HALF_WINDOW + 1)
          const toks: string[] = []
          const acts: number[] = []
          for (let t = lo; t < hi; t++) {
            toks.push(encoder.tokenText(w.ids[t]))
            acts.push(res.poolMask[base + t] > 0 ? Math.round(res.activations[(base + t) * L + c] * 1e4) / 1e4 : 0)
          }
          // A long document has several windows: keep the one holding its max.
          const key = latent * ranksPerLatent + rank
          let at = slot.get(key)
          if (at === undefined) {
            at = out.latent.length
            slot.set(key, at)
          } else if (out.value[at] >= bestV) continue
          out.latent[at] = latent
          out.rank[at] = rank
          out.doc[at] = row
          out.value[at] = bestV
          out.position[at] = bestT + w.offset
          out.windowStart[at] = lo + w.offset
          out.tokens[at] = JSON.stringify(toks)
          out.activations[at] = JSON.stringify(acts)
        }
      }
    }
  }
  await session.release()
  o.log?.(
    `top examples: re-encoded ${docs.length} candidate documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`
  )
  return out
}
