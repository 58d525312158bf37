/** @module The clusters contract: request and result of targeted clustering (POST /clusters, or an analysis job). */
import { z } from 'zod'
import { LatentRef } from './latents.ts'

export const ClusterMethod = z.enum(['spectral', 'kmeans'])
export type ClusterMethod = z.infer<typeof ClusterMethod>

export const ClustersRequest = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset whose documents to cluster' }).min(1),
  k: z.number({ error: 'k is required: the number of clusters' }).int().min(2)
    .max(200, 'k is at most 200: the spectral embedding has k dimensions and its Lanczos basis grows with k'),
  latents: z.array(z.number().int().nonnegative()).min(1).max(100_000).optional()
    .describe('cluster on these latents only'),
  phrases: z.array(z.string().min(1)).min(1).max(100).optional()
    .describe('cluster on the latents whose labels are closest to these phrases (top latentsPerPhrase each, union)'),
  latentsPerPhrase: z.number().int().min(1).max(5000).default(100),
  method: ClusterMethod.default('spectral')
    .describe('spectral: Jaccard similarity of binarized documents + normalized spectral embedding + k-means; kmeans: spherical k-means on the binarized latents'),
  seed: z.number().int().default(0).describe('the same seed gives the same clustering'),
  affinityTop: z.number().int().min(0).max(200).default(3)
    .describe('per document, its affinity to this many clusters (highest first); 0 leaves affinities out'),
}).refine((r) => !(r.latents && r.phrases), { message: 'give either latents or phrases, not both', path: ['phrases'] })
export type ClustersRequest = z.infer<typeof ClustersRequest>
export type ClustersInput = z.input<typeof ClustersRequest>

export const ClusterLatent = LatentRef.extend({
  frequencyIn: z.number().describe('share of the cluster\'s documents where the latent is present'),
  frequencyOut: z.number().describe('share of the other documents where it is present'),
  difference: z.number().describe('frequencyIn - frequencyOut'),
})
export type ClusterLatent = z.infer<typeof ClusterLatent>

export const Cluster = z.object({
  id: z.number().int().describe('clusters are numbered by size, largest first'),
  size: z.number().int(),
  latents: z.array(ClusterLatent).describe('the 5 kept latents most over-represented in the cluster'),
  central: z.array(z.number().int()).describe('the 5 most central rows: highest mean similarity to the cluster (kmeans: cosine to its centroid)'),
})
export type Cluster = z.infer<typeof Cluster>

export const ClustersResult = z.object({
  dataset: z.string(),
  encoder: z.string(),
  documents: z.number().int(),
  k: z.number().int(),
  method: ClusterMethod,
  seed: z.number().int(),
  similarity: z.enum(['jaccard', 'jaccard-knn', 'cosine'])
    .describe('jaccard: exact, all pairs (up to 20,000 documents); jaccard-knn: a k-nearest-neighbour Jaccard graph; cosine: kmeans'),
  latentsUsed: z.array(z.number().int()).describe('the latents clustered on, ascending'),
  phrases: z.array(z.object({ phrase: z.string(), latents: z.array(z.number().int()) })).optional()
    .describe('the latents each phrase chose, best match first'),
  embedder: z.string().nullable().describe('the embedder that matched phrases to labels (null without phrases)'),
  emptyDocuments: z.number().int().describe('documents with none of the latents used: they join their nearest cluster with no evidence'),
  eigenvalues: z.array(z.number()).optional().describe('spectral: the k leading eigenvalues of D^-1/2 W D^-1/2'),
  seconds: z.number(),
  clusters: z.array(Cluster),
  assignments: z.array(z.number().int()).describe('assignments[i] is the cluster of row i'),
  affinities: z.array(z.array(z.tuple([z.number().int(), z.number()]))).optional()
    .describe('affinities[i]: [cluster, affinity] pairs of row i, highest first; a row\'s affinities over all clusters sum to 1'),
})
export type ClustersResult = z.infer<typeof ClustersResult>
