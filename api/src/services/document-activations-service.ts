/**
 * @module GET /datasets/{id}/documents/{row}/activations: where chosen latents fire in one document, token by token,
 * re-encoded where this process holds the dataset's encoder (elsewhere 501 encoder-not-held).
 */
import { DocumentActivationsQuery, poolRolesOf, type DocumentActivations } from '@latentbase/shared/contract/dataset'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { loadReadyDataset } from './ready-dataset.ts'

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
  const outside = latents.filter(l => l >= dSae)
  if (outside.length) {
    throw new ApiError(
      400,
      'latent-not-found',
      `latent${outside.length > 1 ? 's' : ''} ${outside.join(', ')} do${outside.length > 1 ? '' : 'es'} not exist: encoder ${manifest.encoder.id} of dataset "${record.id}" has latents 0-${dSae - 1}`
    )
  }
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
  if (!read) {
    throw new ApiError(
      501,
      'encoder-not-held',
      `where latents fire in a document needs the document re-encoded with encoder ${manifest.encoder.id} as dataset "${record.id}" was, and this deployment does not hold it (the local server does): GET /datasets/{id}/documents/{row} has each latent's peak token (position) and value without it`
    )
  }
  const n = read.tokens.length
  return {
    dataset: record.id,
    row,
    id: read.id,
    encoder: manifest.encoder.id,
    tokens: read.tokens,
    pooled: Array.from(read.pooled),
    truncated: read.truncated,
    latents: latents.map((latent, c) => {
      const values = read.activations.subarray(c * n, (c + 1) * n)
      let max = 0
      let position = -1
      for (let t = 0; t < n; t++) {
        if (values[t] > max) {
          max = values[t]
          position = t
        }
      }
      return {
        latent,
        label: info.labels[latent] ?? null,
        max: round(max),
        position,
        activations: Array.from(values, round)
      }
    })
  }
}

/** Five significant digits: what a shading or a comparison with the stored value needs, at a third of the JSON. */
function round(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(5))
}
