/** @module Facets: per-latent presence counts of each value of a dataset's few-valued metadata keys, kept at write time so that a metadata slice's diff adds a few count vectors instead of reading its rows. */
import { metadataPath, sliceFields, sliceNeeds, type Slice, type SliceScalar } from '../contract/slice.ts'
import type { PooledCsr } from './sparse.ts'
import { evaluateSlice } from './slice.ts'

/**
 * Distinct values a key may have and stay a facet: model, split, label, source, language. A key with more (ids,
 * prompts, scores) is the by-latent sidecars' job.
 */
export const MAX_FACET_VALUES = 32
/** Count vectors a facets file holds at most (nLatents int32 each): 128 x 16,384 latents is 8 MB. */
export const MAX_FACET_BLOCKS = 128
/** Keys listed in `dropped` at most: metadata keyed by ids would otherwise list every document's key. */
export const MAX_LISTED_DROPPED = 256

export interface FacetField {
  /** A top-level metadata key without dots (a dotted key could also name a nested path, which no facet sees). */
  key: string
  /** The key's distinct values, in order of first appearance; a document without the key (or with non-object metadata) has none of them. */
  values: SliceScalar[]
  /** Per value: its documents, their tokens, and per latent the documents where it is present. */
  docs: number[]
  tokens: number[]
  counts: Int32Array[]
  /**
   * Per document (in row order: a merge puts the first facets' documents first), its value's index, or NO_VALUE:
   * a slice's rows without reading and parsing the metadata column.
   */
  rows: Uint8Array
}

/** A document's entry in FacetField.rows when it has no value of the key. */
export const NO_VALUE = 255

export interface Facets {
  nLatents: number
  /** Every document's figures, so that "the key is missing" (and `!=`) need no block of their own. */
  docs: number
  tokens: number
  total: Int32Array
  fields: FacetField[]
  /**
   * Keys that are not facets anywhere in the dataset: too many values, a non-scalar value, a dotted name, or no room
   * in the file. A merge drops them everywhere, since their counts in one part would be missing from the sum.
   */
  dropped: string[]
  /**
   * More keys were dropped than `dropped` lists (past MAX_LISTED_DROPPED): a merge then keeps a key of the other side
   * only if this side counts it too, since this side may have dropped it unlisted.
   */
  droppedMore?: boolean
}

const canonical = (v: SliceScalar): string => JSON.stringify(v)
const isScalar = (v: unknown): v is SliceScalar =>
  v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))

function parseMetadata(m: string | Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  const obj = typeof m === 'string' ? (m === '' ? null : JSON.parse(m)) : m
  return obj && typeof obj === 'object' && !Array.isArray(obj) ? obj : null
}

/** Keep keys (ascending) while their blocks fit the file; the rest join `dropped`. */
function withinBudget<F extends { key: string; values: unknown[] }>(fields: F[], dropped: Set<string>): F[] {
  const kept: F[] = []
  let blocks = 1 // the total
  for (const f of [...fields].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (blocks + f.values.length > MAX_FACET_BLOCKS) dropped.add(f.key)
    else {
      kept.push(f)
      blocks += f.values.length
    }
  }
  return kept
}

/**
 * The facets of a part of a dataset: `metadata[i]` and `tokenCount[i]` belong to the CSR's row i. One pass finds
 * which keys qualify, a second adds each document's present latents to its values' vectors.
 */
export function facetsOf(
  csr: PooledCsr,
  metadata: ArrayLike<string | Record<string, unknown> | null>,
  tokenCount: ArrayLike<number>
): Facets {
  const n = csr.nDocs
  if (metadata.length !== n || tokenCount.length !== n)
    throw new Error(`facets: ${metadata.length} metadata and ${tokenCount.length} token counts for ${n} documents`)
  const meta = Array.from({ length: n }, (_, i) => parseMetadata(metadata[i]))
  const dropped = new Set<string>()
  const seen = new Map<string, Map<string, number>>()
  for (const m of meta) {
    if (!m) continue
    for (const [key, v] of Object.entries(m)) {
      if (dropped.has(key)) continue
      if (key === '' || key.includes('.')) {
        dropped.add(key)
        continue
      }
      let values = seen.get(key)
      if (!values) seen.set(key, (values = new Map()))
      if (!isScalar(v) || (!values.has(canonical(v)) && values.size === MAX_FACET_VALUES)) {
        dropped.add(key)
        seen.delete(key)
      } else if (!values.has(canonical(v))) values.set(canonical(v), values.size)
    }
  }
  // Vectors only for the keys that fit: metadata keyed by ids makes a candidate of every document's key.
  const fields: FacetField[] = withinBudget(
    [...seen].map(([key, values]) => ({ key, values: [...values.keys()] })),
    dropped
  ).map(({ key, values }) => ({
    key,
    values: values.map(k => JSON.parse(k) as SliceScalar),
    docs: new Array(values.length).fill(0),
    tokens: new Array(values.length).fill(0),
    counts: Array.from({ length: values.length }, () => new Int32Array(csr.nLatents)),
    rows: new Uint8Array(n).fill(NO_VALUE)
  }))
  const total = new Int32Array(csr.nLatents)
  let docs = 0
  let tokens = 0
  const index = fields.map(f => new Map(f.values.map((v, i) => [canonical(v), i])))
  const { indptr, latents, values } = csr
  const blocks: Int32Array[] = []
  for (let d = 0; d < n; d++) {
    docs++
    tokens += tokenCount[d]
    blocks.length = 0
    blocks.push(total)
    const m = meta[d]
    if (m) {
      fields.forEach((f, j) => {
        if (!Object.hasOwn(m, f.key)) return
        const i = index[j].get(canonical(m[f.key] as SliceScalar))!
        f.docs[i]++
        f.tokens[i] += tokenCount[d]
        f.rows[d] = i
        blocks.push(f.counts[i])
      })
    }
    for (let k = indptr[d]; k < indptr[d + 1]; k++) {
      if (!(values[k] > 0)) continue
      const l = latents[k]
      for (let b = 0; b < blocks.length; b++) blocks[b][l]++
    }
  }
  return { nLatents: csr.nLatents, docs, tokens, total, fields, ...listed(dropped) }
}

function listed(dropped: Set<string>, more = false): Pick<Facets, 'dropped' | 'droppedMore'> {
  const all = [...dropped].sort()
  return all.length > MAX_LISTED_DROPPED || more
    ? { dropped: all.slice(0, MAX_LISTED_DROPPED), droppedMore: true }
    : { dropped: all }
}

/** The facets of two disjoint sets of documents (parts, versions) as one, a's documents first. Neither is modified. */
export function mergeFacets(a: Facets, b: Facets): Facets {
  const merger = new FacetsMerger()
  merger.add(a)
  merger.add(b)
  return merger.result()
}

interface MergingField extends Omit<FacetField, 'rows'> {
  at: Map<string, number>
  rows: Uint8Array
}

/**
 * Merges the facets of consecutive sets of documents (a dataset's parts, in row order) in one pass: counts are added
 * in place and each key's bytes per document appended, so merging P parts costs their size, not P times the total.
 * The inputs are not modified.
 */
export class FacetsMerger {
  private nLatents = -1
  private docs = 0
  private tokens = 0
  private total: Int32Array | null = null
  private readonly fields = new Map<string, MergingField>()
  private readonly dropped = new Set<string>()
  private droppedMore = false

  add(f: Facets): void {
    if (this.nLatents >= 0 && f.nLatents !== this.nLatents)
      throw new Error(`cannot merge facets of ${this.nLatents} and ${f.nLatents} latents`)
    this.nLatents = f.nLatents
    const counted = new Set(f.fields.map(x => x.key))
    for (const key of f.dropped) this.drop(key)
    // A key one side counts and the other may have dropped without listing it is dropped.
    if (f.droppedMore) for (const key of [...this.fields.keys()]) if (!counted.has(key)) this.drop(key)
    if (this.droppedMore && this.total) for (const key of counted) if (!this.fields.has(key)) this.drop(key)
    this.droppedMore ||= Boolean(f.droppedMore)
    const start = this.docs
    for (const x of f.fields) {
      if (this.dropped.has(x.key)) continue
      let out = this.fields.get(x.key)
      if (!out) {
        out = { key: x.key, values: [], docs: [], tokens: [], counts: [], at: new Map(), rows: new Uint8Array(0) }
        this.fields.set(x.key, out)
      }
      const to = new Uint8Array(x.values.length)
      x.values.forEach((v, i) => {
        const c = canonical(v)
        let j = out.at.get(c)
        if (j === undefined) {
          j = out.values.length
          out.at.set(c, j)
          out.values.push(v)
          out.docs.push(x.docs[i])
          out.tokens.push(x.tokens[i])
          out.counts.push(x.counts[i].slice())
        } else {
          out.docs[j] += x.docs[i]
          out.tokens[j] += x.tokens[i]
          const sum = out.counts[j]
          const src = x.counts[i]
          for (let l = 0; l < sum.length; l++) sum[l] += src[l]
        }
        to[i] = j
      })
      if (out.values.length > MAX_FACET_VALUES) {
        this.drop(x.key)
        continue
      }
      out.rows = grown(out.rows, start, start + f.docs)
      for (let d = 0; d < f.docs; d++) if (x.rows[d] !== NO_VALUE) out.rows[start + d] = to[x.rows[d]]
    }
    if (this.total) for (let l = 0; l < this.total.length; l++) this.total[l] += f.total[l]
    else this.total = f.total.slice()
    this.docs += f.docs
    this.tokens += f.tokens
    const kept = new Set(withinBudget([...this.fields.values()], this.dropped).map(x => x.key))
    for (const key of [...this.fields.keys()]) if (!kept.has(key)) this.drop(key)
  }

  result(): Facets {
    if (!this.total) throw new Error('facets: nothing to merge')
    const fields = withinBudget([...this.fields.values()], this.dropped).map(
      ({ key, values, docs, tokens, counts, rows }): FacetField => ({
        key,
        values,
        docs,
        tokens,
        counts,
        rows: grown(rows, this.docs, this.docs).subarray(0, this.docs)
      })
    )
    return {
      nLatents: this.nLatents,
      docs: this.docs,
      tokens: this.tokens,
      total: this.total,
      fields,
      ...listed(this.dropped, this.droppedMore)
    }
  }

  private drop(key: string): void {
    this.dropped.add(key)
    this.fields.delete(key)
  }
}

/**
 * `rows` with room for `end` bytes, NO_VALUE past the `filled` it held (documents of earlier parts without the key):
 * capacity doubles, so appending part after part copies each byte a bounded number of times.
 */
function grown(rows: Uint8Array, filled: number, end: number): Uint8Array {
  if (rows.length >= end) {
    rows.fill(NO_VALUE, Math.min(filled, rows.length), end)
    return rows
  }
  const out = new Uint8Array(Math.max(end, rows.length * 2)).fill(NO_VALUE)
  out.set(rows.subarray(0, Math.min(filled, rows.length)))
  return out
}

/** Header of a facets file: everything but the count vectors. */
export type FacetsHeader = Omit<Facets, 'total' | 'fields'> & { fields: Array<Omit<FacetField, 'counts' | 'rows'>> }

/**
 * The documents a slice selects, as sums of a facet's vectors: `values` added up, or with `complement`, every
 * document's vector minus them (a selection that takes documents without the key, as `!=` does).
 */
export interface FacetSelection {
  field: number
  values: number[]
  complement: boolean
}

/**
 * How facets answer a slice, or null when they cannot: the slice must test one metadata key and nothing else (no
 * tokens, no latents), and that key must be a facet. The values are found by evaluating the slice itself on one
 * stand-in document per value (and one without the key), so the semantics are exactly the slice evaluator's (a number
 * matching a string spelling it, `!=` taking documents without the key, ...).
 */
export function facetSelection(header: Pick<FacetsHeader, 'fields'>, slice: Slice): FacetSelection | null {
  const needs = sliceNeeds(slice)
  if (!needs.metadata || needs.tokens || needs.latents.length) return null
  const names = sliceFields(slice)
  if (names.length !== 1) return null
  const key = metadataPath(names[0])
  const field = header.fields.findIndex(f => f.key === key)
  if (field < 0) return null
  const n = header.fields[field].values.length
  const metadata = [...header.fields[field].values.map(v => Object.fromEntries([[key!, v]])), {}]
  const mask = new Uint8Array(n + 1)
  for (const r of evaluateSlice(slice, {
    nDocs: n + 1,
    documents: { row: Int32Array.from(mask, (_, i) => i), metadata }
  }))
    mask[r] = 1
  const complement = mask[n] === 1
  const values: number[] = []
  for (let i = 0; i < n; i++) if ((mask[i] === 1) !== complement) values.push(i)
  return { field, values, complement }
}

/**
 * A selection's documents, tokens and per-latent presence counts, from the vectors it names: `blocks[j]` is value
 * `selection.values[j]`'s, `total` every document's (needed only with `complement`).
 */
export function facetCounts(
  header: FacetsHeader,
  selection: FacetSelection,
  blocks: Int32Array[],
  total: Int32Array | null
): { docs: number; tokens: number; counts: Int32Array } {
  const f = header.fields[selection.field]
  if (selection.complement && !total) throw new Error('facets: a complement selection needs the total vector')
  const sign = selection.complement ? -1 : 1
  const counts = selection.complement ? total!.slice() : new Int32Array(header.nLatents)
  let docs = selection.complement ? header.docs : 0
  let tokens = selection.complement ? header.tokens : 0
  selection.values.forEach((i, j) => {
    docs += sign * f.docs[i]
    tokens += sign * f.tokens[i]
    const c = blocks[j]
    for (let l = 0; l < counts.length; l++) counts[l] += sign * c[l]
  })
  return { docs, tokens, counts }
}

/**
 * The facet fields a slice's conditions name, when every condition is on a facet key (any number of keys, combined
 * with and / or / not); null when one names tokens, latents or a key that is no facet (its rows need the documents).
 */
export function facetFieldsOf(header: Pick<FacetsHeader, 'fields'>, slice: Slice): number[] | null {
  const needs = sliceNeeds(slice)
  if (!needs.metadata || needs.tokens || needs.latents.length) return null
  const fields: number[] = []
  for (const name of sliceFields(slice)) {
    const key = metadataPath(name)
    const field = header.fields.findIndex(f => f.key === key)
    if (field < 0) return null
    fields.push(field)
  }
  return fields
}

/**
 * The dataset rows (ascending) of a slice on facet keys (see facetFieldsOf), from each key's value per document
 * (`rowsOf(field)`, FacetField.rows): each condition is one key's selection (facetSelection), so the semantics are the
 * slice evaluator's, and and / or / not combine them per document.
 */
export function facetSliceRows(
  header: Pick<FacetsHeader, 'fields' | 'docs'>,
  slice: Slice,
  rowsOf: (field: number) => Uint8Array
): Int32Array {
  const n = header.docs
  const evaluate = (s: Slice): Uint8Array => {
    if ('and' in s || 'or' in s) {
      const parts = 'and' in s ? s.and : s.or
      const out = evaluate(parts[0])
      for (let j = 1; j < parts.length; j++) {
        const m = evaluate(parts[j])
        if ('and' in s) for (let d = 0; d < n; d++) out[d] &= m[d]
        else for (let d = 0; d < n; d++) out[d] |= m[d]
      }
      return out
    }
    if ('not' in s) {
      const out = evaluate(s.not)
      for (let d = 0; d < n; d++) out[d] ^= 1
      return out
    }
    const selection = facetSelection(header, s)
    if (!selection)
      throw new Error('facetSliceRows: a condition that is not on a facet key (check facetFieldsOf first)')
    const take = new Uint8Array(256).fill(selection.complement ? 1 : 0)
    for (const v of selection.values) take[v] = selection.complement ? 0 : 1
    const values = rowsOf(selection.field)
    const out = new Uint8Array(n)
    for (let d = 0; d < n; d++) out[d] = take[values[d]]
    return out
  }
  const mask = evaluate(slice)
  let count = 0
  for (let d = 0; d < n; d++) count += mask[d]
  const out = new Int32Array(count)
  for (let d = 0, j = 0; d < n; d++) if (mask[d]) out[j++] = d
  return out
}
