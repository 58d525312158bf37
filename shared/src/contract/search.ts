/** @module The search contract: query parameters and result of GET /search (property retrieval). */
import { z } from 'zod'

const csvInts = z.string().regex(/^\d+(,\d+)*$/, 'a comma-separated list of latent ids, e.g. 12,40,977')
  .transform((s) => s.split(',').map(Number))

export const SearchMethod = z.enum(['sae', 'bm25', 'hybrid'])
export type SearchMethod = z.infer<typeof SearchMethod>

export const SearchQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset to search' }).min(1),
  q: z.string().trim().min(1).max(2000).optional().describe('the property to find, in words'),
  method: SearchMethod.default('sae')
    .describe('sae: latents whose labels match q; bm25: the text itself; hybrid: reciprocal rank fusion of the two'),
  latents: csvInts.optional().describe('query given as latents, most important first (replaces the label match of sae)'),
  k: z.coerce.number().int().min(1).max(200).default(10).describe('latents kept (those whose labels are closest to q)'),
  temperature: z.coerce.number().gt(0).max(10).default(0.2).describe('rank weights exp(-(r/k)/T): lower favours the first latents'),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
})
export type SearchQuery = z.infer<typeof SearchQuery>

export const SearchHit = z.object({
  row: z.number().int(),
  id: z.string(),
  score: z.number(),
  snippet: z.string().describe('about 200 characters: sae, around the estimated place where its first latent peaks (positions are stored, character offsets are not); bm25 and hybrid, around the first query word; else the start'),
})
export type SearchHit = z.infer<typeof SearchHit>

export const SearchLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  weight: z.number().describe('rank weight exp(-(r/k)/T)'),
  similarity: z.number().nullable().describe('label-to-query cosine; null for latents given explicitly'),
  p90: z.number().describe('90th percentile of the latent\'s present values in this dataset (its normalizer)'),
})
export type SearchLatent = z.infer<typeof SearchLatent>

export const SearchResult = z.object({
  dataset: z.string(),
  encoder: z.string(),
  method: SearchMethod,
  query: z.string().nullable(),
  k: z.number().int(),
  temperature: z.number(),
  embedder: z.string().nullable().describe('embedder of the label similarities (null when none was used)'),
  matched: z.number().int().describe('documents with a positive score'),
  results: z.array(SearchHit),
  latents: z.array(SearchLatent),
})
export type SearchResult = z.infer<typeof SearchResult>
