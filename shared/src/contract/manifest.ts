/** @module The latent store manifest: written last, its presence means a dataset is complete. */
import { z } from 'zod'
import { PoolingSpec } from './dataset.ts'
import { VersionInfo } from './version-info.ts'

export const STORE_VERSION = 1

/** A row group of a Parquet file with the range of the sort key it covers (inclusive). */
export const RowGroupRange = z.object({
  rowStart: z.number().int().nonnegative(),
  rowCount: z.number().int().nonnegative(),
  first: z.number().int().describe('sort key of the first row (doc for by-doc, latent for by-latent)'),
  last: z.number().int().describe('sort key of the last row')
})
export type RowGroupRange = z.infer<typeof RowGroupRange>

export const ShardFile = z.object({
  key: z.string().describe('object key relative to the dataset prefix'),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  rowGroups: z.array(RowGroupRange),
  docStart: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe('first document row the shard covers: shards from parallel chunks cover disjoint row ranges'),
  docCount: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe('document rows covered, including documents without any active latent'),
  cscBytes: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe(
      "by-latent shards: size of the latent-major sidecar beside it (the key with .csc for .parquet: each latent's documents and values as raw arrays); absent: none was written"
    ),
  bm25Bytes: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe(
      "documents shards: size of the BM25 sidecar beside it (the key with .bm25 for .parquet: the shard's inverted index of its texts); absent: none was written, and a BM25 search indexes the texts itself"
    )
})
export type ShardFile = z.infer<typeof ShardFile>

export const Manifest = z.object({
  storeVersion: z.literal(STORE_VERSION),
  datasetId: z.string(),
  tenant: z.string(),
  createdAt: z.string(),
  encoder: z.object({ id: z.string(), hookName: z.string(), dSae: z.number().int(), architecture: z.string() }),
  encoderFingerprint: z.string(),
  pooling: PoolingSpec,
  maxTokens: z.number().int(),
  longDocuments: z.enum(['truncate', 'window']),
  documents: z.object({
    count: z.number().int(),
    tokens: z.number().int(),
    files: z.array(ShardFile).describe('documents Parquet, sorted by row')
  }),
  latents: z.object({
    nnz: z.number().int(),
    byDocument: z.array(ShardFile).describe('(doc, latent, value, position) sorted by doc then latent'),
    byLatent: z.array(ShardFile).describe('(latent, doc, value, position) sorted by latent then doc')
  }),
  stats: z.object({
    key: z.string(),
    histogramEdges: z.array(z.number()),
    p90Key: z.string().optional().describe("every latent's p90 (float32 LE); absent: stats/latent-p90.f32")
  }),
  topExamples: z.object({ key: z.string(), perLatent: z.number().int() }).optional(),
  facets: z
    .object({
      key: z.string(),
      fields: z.array(z.string()).describe('the metadata keys it counts: a slice on another key reads rows')
    })
    .optional()
    .describe(
      "per-latent presence counts of each value of the dataset's few-valued metadata keys (absent: none were written, and every metadata slice reads its rows)"
    ),
  summary: z.record(z.string(), z.unknown()).describe('the DatasetStats at commit time'),
  version: z.number().int().min(1).optional().describe('the dataset version this manifest describes (absent: 1)'),
  versions: z
    .array(
      VersionInfo.extend({
        dir: z
          .string()
          .describe('folder of the files this version added, relative to the dataset prefix ("" for version 1)'),
        statsKey: z.string().describe("statistics of this version's batch alone (what a drift diff reads)")
      })
    )
    .optional()
    .describe('every version up to this one, oldest first (absent: one version)')
})
export type Manifest = z.infer<typeof Manifest>
