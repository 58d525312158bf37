/**
 * @module Bookkeeping of a dataset's encoding while it runs (scale-out): the plan splitting the documents into parts
 * encoded by any number of workers in parallel, each part's completion marker and live progress. All of it lives
 * under the dataset prefix and is swept once the manifest is committed.
 */
import { z } from 'zod'
import { ShardFile } from './manifest.ts'

export const EncodePart = z.object({
  docStart: z.number().int().nonnegative().describe('first document row of the part: rows are global and contiguous'),
  docCount: z.number().int().positive(),
  tokens: z.number().int().nonnegative().describe('reader tokens, BOS included, as counted by the planner')
})
export type EncodePart = z.infer<typeof EncodePart>

export const EncodePlan = z.object({
  tenant: z.string(),
  datasetId: z.string(),
  startedAt: z.string().describe('when planning began: the wall-clock origin of stats.seconds.total'),
  documents: z.number().int().positive(),
  tokens: z.number().int().nonnegative(),
  skipped: z.record(z.string(), z.number().int()).describe('documents left out by the planner, by reason'),
  seconds: z.number().nonnegative().describe('reading, tokenizing and staging the source'),
  parts: z.array(EncodePart).min(1)
})
export type EncodePlan = z.infer<typeof EncodePlan>

/** Written by the worker that finished a part, after its shards: its presence means the part is done. */
export const PartMarker = z.object({
  part: z.number().int().nonnegative(),
  docStart: z.number().int().nonnegative(),
  docCount: z.number().int().positive(),
  tokens: z.number().int().nonnegative(),
  truncated: z.number().int().nonnegative(),
  masked: z.object({ special: z.number().int(), outlier: z.number().int(), role: z.number().int() }),
  nnz: z.number().int().nonnegative(),
  files: z.object({ documents: ShardFile, byDocument: ShardFile, byLatent: ShardFile }),
  statsKey: z.string(),
  facetsKey: z
    .string()
    .optional()
    .describe("the part's facets (absent: a part written before facets; the dataset then has none)"),
  examplesKey: z
    .string()
    .optional()
    .describe('top examples captured in the encode pass (absent: finalize mines them in a second pass)'),
  seconds: z.object({ tokenize: z.number(), encode: z.number(), write: z.number(), examples: z.number().optional() }),
  receiveCount: z.number().int().positive().describe('the delivery of the part job that finished it (1: first try)')
})
export type PartMarker = z.infer<typeof PartMarker>

/** A running part's progress, rewritten every few seconds by its worker (one object per part: no write races). */
export const PartProgress = z.object({
  part: z.number().int().nonnegative(),
  documents: z.number().int(),
  tokens: z.number().int()
})
export type PartProgress = z.infer<typeof PartProgress>

/** The create-only claim on finalizing: the part job that takes it merges, mines examples and commits the manifest. */
export const FinalizeClaim = z.object({ part: z.number().int().nonnegative() })
