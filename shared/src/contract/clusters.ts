/** @module The clusters contract: request and result of targeted clustering (POST /clusters, or an analysis job). */
import { z } from 'zod'
import { SliceParam } from './slice.ts'
import { LatentRef } from './latents.ts'
import { FailedItem, Usage } from './llm.ts'

/** latents, phrases and axis each choose the latents: at most one of them. */
export function oneLatentChoice(r: { latents?: unknown; phrases?: unknown; axis?: unknown }): boolean {
  return [r.latents, r.phrases, r.axis].filter(x => x !== undefined).length <= 1
}

/** Documents a clustering is fitted on at most by default; more are sampled (docs/jobs.md). */
export const DEFAULT_SAMPLE_MAX_DOCS = 50_000
export const SAMPLE_MAX_DOCS_CAP = 200_000

export const ClusterMethod = z.enum(['spectral', 'kmeans'])
export type ClusterMethod = z.infer<typeof ClusterMethod>
export const SpectralSimilarity = z.enum(['cosine', 'jaccard'])

export const ClustersRequest = z
  .object({
    dataset: z.string({ error: 'dataset is required: the id of the dataset whose documents to cluster' }).min(1),
    k: z
      .number({ error: 'k is required: the number of clusters' })
      .int()
      .min(2)
      .max(200, 'k is at most 200: the spectral embedding has k dimensions and its Lanczos basis grows with k'),
    latents: z
      .array(z.number().int().nonnegative())
      .min(1)
      .max(100_000)
      .optional()
      .describe('cluster on these latents only'),
    phrases: z
      .array(z.string().min(1))
      .min(1)
      .max(100)
      .optional()
      .describe('cluster on the latents whose labels are closest to these phrases (top latentsPerPhrase each, union)'),
    latentsPerPhrase: z.number().int().min(1).max(5000).default(100),
    method: ClusterMethod.default('spectral').describe(
      'spectral: a similarity of binarized documents (see similarity) + normalized spectral embedding + k-means; kmeans: spherical k-means on the binarized latents'
    ),
    similarity: SpectralSimilarity.default('cosine').describe(
      "spectral only. cosine: of the binarized documents with each latent weighted by sqrt(ln(documents / its documents)), applied without forming the documents x documents matrix (any size, seconds at 50,000 documents); jaccard: the paper's, exact up to 20,000 documents (2 n^2 bytes), a k-nearest-neighbour Jaccard graph above"
    ),
    seed: z.number().int().default(0).describe('the same seed gives the same clustering'),
    affinityTop: z
      .number()
      .int()
      .min(0)
      .max(200)
      .default(3)
      .describe('per document, its affinity to this many clusters (highest first); 0 leaves affinities out'),
    axis: z
      .string()
      .trim()
      .min(1)
      .max(500)
      .optional()
      .describe(
        'an axis of interest in words: an LLM writes 2-10 key phrases for it, which then choose the latents as `phrases` do (needs an LLM)'
      ),
    nameClusters: z
      .boolean()
      .default(false)
      .describe('an LLM names each cluster from its top latents and central documents (needs an LLM)'),
    dryRun: z
      .boolean()
      .default(false)
      .describe(
        'with axis or nameClusters: answer the estimated tokens and cost of the LLM calls (a DryRunEstimate), cluster nothing and spend nothing'
      ),
    where: SliceParam.optional().describe(
      'cluster only a slice of the dataset (JSON form or text, docs/slices.md); assignments then follow `rows`'
    ),
    sampleMaxDocs: z
      .number()
      .int()
      .min(100)
      .max(
        SAMPLE_MAX_DOCS_CAP,
        `sampleMaxDocs is at most ${SAMPLE_MAX_DOCS_CAP}: the fit holds its sample in one process`
      )
      .default(DEFAULT_SAMPLE_MAX_DOCS)
      .describe(
        'datasets (or slices) with more documents than this are fitted on a uniform random sample of this many (drawn by seed), then every document is assigned to its nearest cluster centroid, part by part (see `fit`)'
      )
  })
  .refine(oneLatentChoice, { message: 'give at most one of latents, phrases and axis', path: ['phrases'] })
  .refine(r => !(r.method === 'kmeans' && r.similarity === 'jaccard'), {
    message: 'similarity jaccard is for method spectral: kmeans compares documents with centroids by cosine',
    path: ['similarity']
  })
export type ClustersRequest = z.infer<typeof ClustersRequest>
export type ClustersInput = z.input<typeof ClustersRequest>

export const ClusterLatent = LatentRef.extend({
  frequencyIn: z.number().describe("share of the cluster's documents where the latent is present"),
  frequencyOut: z.number().describe('share of the other documents where it is present'),
  difference: z.number().describe('frequencyIn - frequencyOut')
})
export type ClusterLatent = z.infer<typeof ClusterLatent>

export const Cluster = z.object({
  id: z.number().int().describe('clusters are numbered by size, largest first'),
  size: z.number().int(),
  latents: z.array(ClusterLatent).describe('the 5 kept latents most over-represented in the cluster'),
  central: z
    .array(z.number().int())
    .describe(
      'the 5 most central rows: highest mean similarity to the cluster (kmeans: cosine to its centroid; fitted on a sample: cosine to the fitted centroid, over every document)'
    ),
  name: z
    .string()
    .nullable()
    .optional()
    .describe("nameClusters: the LLM's name for the cluster (null when that call failed)"),
  description: z.string().nullable().optional().describe('nameClusters: one sentence on what its documents share')
})
export type Cluster = z.infer<typeof Cluster>

export const ClustersResult = z.object({
  dataset: z.string(),
  encoder: z.string(),
  documents: z.number().int(),
  k: z.number().int(),
  method: ClusterMethod,
  seed: z.number().int(),
  similarity: z
    .enum(['jaccard', 'jaccard-knn', 'cosine'])
    .describe(
      'spectral: cosine (sqrt-idf weighted, the default), jaccard (exact, all pairs, up to 20,000 documents) or jaccard-knn (a k-nearest-neighbour Jaccard graph); kmeans: cosine'
    ),
  latentsUsed: z.array(z.number().int()).describe('the latents clustered on, ascending'),
  phrases: z
    .array(z.object({ phrase: z.string(), latents: z.array(z.number().int()) }))
    .optional()
    .describe('the latents each phrase chose, best match first'),
  axis: z
    .object({ text: z.string(), phrases: z.array(z.string()) })
    .optional()
    .describe('axis: the key phrases the LLM wrote for it'),
  embedder: z.string().nullable().describe('the embedder that matched phrases to labels (null without phrases)'),
  emptyDocuments: z
    .number()
    .int()
    .describe('documents with none of the latents used: they join their nearest cluster with no evidence'),
  eigenvalues: z.array(z.number()).optional().describe('spectral: the k leading eigenvalues of D^-1/2 W D^-1/2'),
  seconds: z.number(),
  fit: z
    .object({
      sample: z
        .number()
        .int()
        .describe('documents the clustering was fitted on (a uniform random sample drawn by seed)'),
      of: z.number().int().describe('documents clustered'),
      parts: z.number().int().describe('parts the assignment of every document ran in'),
      assign: z
        .literal('nearest-centroid')
        .describe(
          "the sample's documents keep their fitted cluster; every other document joins the cluster whose centroid (its members' latent presence frequencies) is nearest by cosine"
        )
    })
    .optional()
    .describe(
      "present when the clustering was fitted on a sample and extended (more documents than sampleMaxDocs): sizes and latents count every document, central rows are the closest to each fitted centroid among every document, names (nameClusters) are given at the merge from those, eigenvalues are the fit's, affinities are left out"
    ),
  clusters: z.array(Cluster),
  where: z.string().optional().describe('the slice clustered (canonical text form); absent for the whole dataset'),
  rows: z
    .array(z.number().int())
    .optional()
    .describe('slices only: the dataset row of each entry of assignments and affinities'),
  assignments: z.array(z.number().int()).describe('assignments[i] is the cluster of row i (of rows[i] for a slice)'),
  affinities: z
    .array(z.array(z.tuple([z.number().int(), z.number()])))
    .optional()
    .describe(
      "affinities[i]: [cluster, affinity] pairs of row i, highest first; a row's affinities over all clusters sum to 1"
    ),
  usage: Usage.optional().describe('axis / nameClusters: tokens (and cost) the LLM spent'),
  failed: z.array(FailedItem).optional().describe('LLM calls that failed (a cluster whose naming failed has name null)')
})
export type ClustersResult = z.infer<typeof ClustersResult>
