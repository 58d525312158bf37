/** @module GET /datasets/{id}/documents/{row}/similar and GET /datasets/{id}/similar?text=: documents like a given one, or like a text, with the latents they share. */
import { z } from 'zod'
import { LatentRef } from './latents.ts'
import { SliceParam } from './slice.ts'

export const SimilarQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(20).describe('documents returned'),
  shared: z.coerce
    .number()
    .int()
    .min(0)
    .max(20)
    .default(5)
    .describe('shared latents listed per document, largest part of the similarity first'),
  in: z
    .string()
    .min(1)
    .optional()
    .describe(
      'look for them in another dataset encoded alike (same encoder and pooling, e.g. the other side of a diff); its documents are the candidates and its document frequencies weigh the latents'
    ),
  where: SliceParam.optional().describe(
    "only the documents of a slice of the dataset searched are candidates (docs/slices.md); the latents' weights stay the whole dataset's"
  )
})
export type SimilarQuery = z.infer<typeof SimilarQuery>

export const SharedLatent = LatentRef.extend({
  share: z
    .number()
    .describe("the latent's part of this pair's similarity (its squared weight over the sum of those shared)")
})
export type SharedLatent = z.infer<typeof SharedLatent>

export const SimilarDocument = z.object({
  row: z.number().int().describe('its row in the dataset searched'),
  id: z.string(),
  score: z.number().describe('cosine similarity to the document asked about, 0-1'),
  snippet: z.string().describe('the first ~200 characters'),
  shared: z.array(SharedLatent)
})
export type SimilarDocument = z.infer<typeof SimilarDocument>

export const SimilarDocuments = z.object({
  dataset: z.string(),
  row: z.number().int(),
  id: z.string(),
  in: z.string().describe('the dataset searched: the same as dataset, unless `in` named another'),
  where: z.string().optional().describe('the slice searched (canonical text form); absent for the whole dataset'),
  encoder: z.string(),
  similarity: z
    .literal('cosine-sqrt-idf')
    .describe(
      "cosine of the documents' latent sets, each latent weighted by sqrt(ln(n / df)) (the similarity spectral clustering uses)"
    ),
  latents: z.number().int().describe('latents present in the document asked about (those with a weight count)'),
  candidates: z
    .number()
    .int()
    .describe('documents compared (the slice, or the whole dataset searched, less the document itself)'),
  results: z.array(SimilarDocument)
})
export type SimilarDocuments = z.infer<typeof SimilarDocuments>

export const SimilarTextQuery = SimilarQuery.omit({ in: true }).extend({
  text: z
    .string({ error: 'text is required: an example of the documents to find' })
    .trim()
    .min(1)
    .max(4000)
    .describe(
      "an example of the documents to find, encoded with the dataset's encoder as its documents were; needs a process that holds the encoder (the local server), else 501"
    )
})
export type SimilarTextQuery = z.infer<typeof SimilarTextQuery>

export const SimilarToText = SimilarDocuments.omit({ row: true, id: true, in: true }).extend({
  text: z.string().describe('the text asked about'),
  latents: z.number().int().describe('latents present in the text (those with a weight count)')
})
export type SimilarToText = z.infer<typeof SimilarToText>
