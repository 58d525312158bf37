/**
 * @module GET /datasets/{id}/documents/{row}/activations and GET /datasets/{id}/activations?text=: where latents fire
 * in one document or in a text, token by token, encoded where this process holds the dataset's encoder (elsewhere 501
 * encoder-not-held).
 */
import { z } from 'zod'
import {
  ChatMessage,
  DocumentActivationsQuery,
  poolRolesOf,
  TextActivationsQuery,
  type DocumentActivations,
  type TextActivations
} from '@latentbase/shared/contract/dataset'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { readPeaks } from './latent-peaks.ts'
import { encoderNotHeld, loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'

export async function documentActivations(
  ctx: AnalysisContext,
  dataset: string,
  row: number,
  input: DocumentActivationsQuery | Record<string, unknown>
): Promise<DocumentActivations> {
  const { latents } = DocumentActivationsQuery.parse(input)
  const target = await loadReadyDataset(ctx.datasets, ctx.tenant, dataset, 'dataset')
  const { manifest, record } = target
  const dSae = manifest.encoder.dSae
  checkLatents(target, latents)
  const count = manifest.documents.count
  if (row >= count) {
    throw new ApiError(
      404,
      'document-not-found',
      `dataset "${record.id}" has ${count} documents (rows 0-${count - 1}); row ${row} does not exist`
    )
  }
  const [read, info] = await Promise.all([
    ctx.documentActivations
      ? ctx.documentActivations(
          { prefix: target.prefix, manifest, poolRoles: poolRolesOf(record) },
          row,
          Int32Array.from(latents)
        )
      : null,
    loadLabelInfo(ctx.encoders, manifest.encoder.id, dSae, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  if (!read)
    throw encoderNotHeld(
      target,
      'Where latents fire in a document',
      "GET /datasets/{id}/documents/{row} has each latent's peak token (position) and value without it."
    )
  return {
    dataset: record.id,
    row,
    id: read.id,
    encoder: manifest.encoder.id,
    tokens: read.tokens,
    pooled: Array.from(read.pooled),
    truncated: read.truncated,
    latents: shownLatents(latents, read, info.labels)
  }
}

/** GET /datasets/{id}/activations?text=: a text encoded as the dataset's documents were, its strongest latents shown. */
export async function textActivations(
  ctx: AnalysisContext,
  dataset: string,
  input: TextActivationsQuery | Record<string, unknown>
): Promise<TextActivations> {
  const query = TextActivationsQuery.parse(input)
  const target = await loadReadyDataset(ctx.datasets, ctx.tenant, dataset, 'dataset')
  const { manifest, record } = target
  if (query.latents) checkLatents(target, query.latents)
  const count = manifest.documents.count
  const [stats, info] = await Promise.all([
    readLatentStats(ctx.objects, target.prefix + manifest.stats.key, ['doc_count']),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, manifest.encoder.dSae, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  // Smoothed idf: a latent the dataset never shows ranks highest, one in every document near 0.
  const weights =
    query.order === 'distinctive'
      ? Float32Array.from(stats.docCount, df => Math.log((count + 1) / (df + 1)))
      : undefined
  const encoded = query.format === 'chat' ? { messages: chatMessagesOf(query.text) } : query.text
  const read = ctx.textActivations
    ? await ctx.textActivations({ manifest, poolRoles: poolRolesOf(record) }, encoded, {
        top: query.top,
        ...(query.latents ? { latents: Int32Array.from(query.latents) } : {}),
        ...(weights ? { weights } : {})
      })
    : null
  if (!read)
    throw encoderNotHeld(
      target,
      "A text's latents",
      'A document of the dataset shows its stored latents without it (GET /datasets/{id}/documents/{row}).'
    )
  const shown = shownLatents(Array.from(read.latents), read, info.labels)
  const unlabelled = shown.filter(l => !l.label && l.position >= 0).map(l => l.latent)
  const peaks = unlabelled.length ? await readPeaks(ctx.objects, target, unlabelled) : new Map()
  return {
    dataset: record.id,
    encoder: manifest.encoder.id,
    text: query.text,
    tokens: read.tokens,
    pooled: Array.from(read.pooled),
    truncated: read.truncated,
    present: read.present,
    latents: shown.map(l => ({
      ...l,
      frequency: stats.docCount[l.latent] / count,
      ...(peaks.has(l.latent) ? { peak: peaks.get(l.latent) ?? null } : {})
    }))
  }
}

/** format=chat: the text is a JSON list of { role, content } messages, or a 400 saying so. */
function chatMessagesOf(text: string): ChatMessage[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ApiError(
      400,
      'invalid-request',
      `with format=chat, text is a JSON list of { "role", "content" } messages; it is not JSON: ${(err as Error).message}`
    )
  }
  const parsed = z.array(ChatMessage).min(1).safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ApiError(
      400,
      'invalid-request',
      `with format=chat, text is a JSON list of { "role", "content" } messages: ${issue.path.length ? `at ${issue.path.join('.')}: ` : ''}${issue.message}`
    )
  }
  return parsed.data
}

function checkLatents({ manifest, record }: ReadyDataset, latents: number[]): void {
  const dSae = manifest.encoder.dSae
  const outside = latents.filter(l => l >= dSae)
  if (outside.length) {
    throw new ApiError(
      400,
      'latent-not-found',
      `latent${outside.length > 1 ? 's' : ''} ${outside.join(', ')} do${outside.length > 1 ? '' : 'es'} not exist: encoder ${manifest.encoder.id} of dataset "${record.id}" has latents 0-${dSae - 1}`
    )
  }
}

/** Each latent's row of per-token activations, with its max and the first token holding it (-1: it never fires). */
function shownLatents(
  latents: readonly number[],
  read: { tokens: string[]; activations: Float32Array },
  labels: ArrayLike<string | null | undefined>
) {
  const n = read.tokens.length
  return latents.map((latent, c) => {
    const values = read.activations.subarray(c * n, (c + 1) * n)
    let max = 0
    let position = -1
    for (let t = 0; t < n; t++) {
      if (values[t] > max) {
        max = values[t]
        position = t
      }
    }
    return { latent, label: labels[latent] ?? null, max: round(max), position, activations: Array.from(values, round) }
  })
}

/** Five significant digits: what a shading or a comparison with the stored value needs, at a third of the JSON. */
function round(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(5))
}
