/** @module Retrieval metrics: average precision, precision@k and MAP, over rankings of document rows. */

/**
 * Average precision of a ranking (best first): the mean, over all relevant documents, of the precision at the rank
 * where each is retrieved; relevant documents never retrieved count 0 (the TREC definition). 0 when nothing is relevant.
 */
export function averagePrecision(ranking: ArrayLike<number>, relevant: ReadonlySet<number>): number {
  if (relevant.size === 0) return 0
  let hits = 0
  let sum = 0
  for (let r = 0; r < ranking.length; r++) {
    if (relevant.has(ranking[r])) {
      hits++
      sum += hits / (r + 1)
    }
  }
  return sum / relevant.size
}

/** Relevant documents among the first k, over k (a ranking shorter than k counts its missing places as misses). */
export function precisionAtK(ranking: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  if (!(k > 0)) throw new RangeError(`k must be positive, got ${k}`)
  let hits = 0
  for (let r = 0; r < Math.min(k, ranking.length); r++) if (relevant.has(ranking[r])) hits++
  return hits / k
}

export interface RankedQuery {
  ranking: ArrayLike<number>
  relevant: ReadonlySet<number>
}

/** Mean of the average precisions (0 for an empty query set). */
export function meanAveragePrecision(queries: readonly RankedQuery[]): number {
  if (queries.length === 0) return 0
  let sum = 0
  for (const q of queries) sum += averagePrecision(q.ranking, q.relevant)
  return sum / queries.length
}
