/** @module Slices: the one filter grammar (JSON form and compact text form, one AST) that restricts an analysis to some documents of a dataset. */
import { z } from 'zod'

/**
 * A slice is a tree of conditions on the documents of one dataset. The JSON form *is* the AST:
 *
 * - metadata:  `{ "field": "metadata.model", "eq": "x" }`, `ne`, `{ "in": ["x", "y"] }`, a numeric range with any of
 *   `gt` / `gte` / `lt` / `lte`, or `{ "exists": true | false }` (key present and not null).
 * - token count: `{ "tokens": { "gte": 10, "lt": 500 } }`.
 * - latents: `{ "latent": 123 }` (present: pooled value > 0), `{ "latent": 123, "gt": 0.5 }` (pooled value range; an
 *   absent latent has value 0).
 * - combinators: `{ "and": [...] }`, `{ "or": [...] }`, `{ "not": {...} }`.
 *
 * The text form parses into the same AST: `metadata.model = "x" and (latent 123 > 0.5 or not latent 77)`,
 * `metadata.model in ("x", "y")`, `tokens >= 10 and tokens < 500`, `metadata.score exists`.
 */
export type SliceScalar = string | number | boolean | null
export interface NumberRange {
  gt?: number
  gte?: number
  lt?: number
  lte?: number
}
export type MetadataCondition = { field: string } & (
  | { eq: SliceScalar }
  | { ne: SliceScalar }
  | { in: SliceScalar[] }
  | { exists: boolean }
  | NumberRange
)
export interface TokensCondition {
  tokens: NumberRange
}
export type LatentCondition = { latent: number } & NumberRange
export type Slice =
  | { and: Slice[] }
  | { or: Slice[] }
  | { not: Slice }
  | MetadataCondition
  | TokensCondition
  | LatentCondition

/** Limits that keep one request's slice cheap to check and evaluate. */
export const SLICE_MAX_NODES = 256
export const SLICE_MAX_TEXT = 4000

const RANGE_OPS = ['gt', 'gte', 'lt', 'lte'] as const
const FIELD_OPS = ['eq', 'ne', 'in', 'exists', ...RANGE_OPS] as const
const FIELD_HELP =
  'a condition is one of { field: "metadata.<key>", eq|ne|in|exists|gt|gte|lt|lte }, { tokens: { gt|gte|lt|lte } }, { latent: <id>[, gt|gte|lt|lte] }, { and: [...] }, { or: [...] } or { not: {...} }'

/** A problem with a slice: `path` locates it in the JSON form, `at` (text form) is the character offset. */
export interface SliceIssue {
  path: (string | number)[]
  message: string
  at?: number
}

export class SliceError extends Error {
  constructor(readonly issues: SliceIssue[]) {
    super(issues.map(i => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '))
    this.name = 'SliceError'
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isScalar = (v: unknown): v is SliceScalar =>
  v === null || (['string', 'number', 'boolean'].includes(typeof v) && (typeof v !== 'number' || Number.isFinite(v)))

/**
 * The metadata key of a field name ("metadata.model" -> "model"), or null when it is not a metadata field. A key with
 * dots ("metadata.user.id") is looked up as one key first, then as a path into nested objects.
 */
export function metadataPath(field: string): string | null {
  if (!field.startsWith('metadata.')) return null
  const key = field.slice('metadata.'.length)
  return key === '' || key.split('.').some(s => s === '') ? null : key
}

/**
 * Check a JSON slice and return it in its canonical form (keys in a fixed order, nothing extra). Throws SliceError
 * naming every unknown key, bad operator and bad value with its path.
 */
export function checkSlice(value: unknown): Slice {
  const issues: SliceIssue[] = []
  let nodes = 0
  const visit = (v: unknown, path: (string | number)[]): Slice | undefined => {
    if (++nodes > SLICE_MAX_NODES) {
      if (nodes === SLICE_MAX_NODES + 1)
        issues.push({ path, message: `a slice has at most ${SLICE_MAX_NODES} conditions` })
      return undefined
    }
    if (!isObject(v)) {
      issues.push({ path, message: `expected an object: ${FIELD_HELP}` })
      return undefined
    }
    const keys = Object.keys(v)
    const only = (allowed: readonly string[], what: string) => {
      const bad = keys.filter(k => !allowed.includes(k))
      for (const k of bad)
        issues.push({
          path: [...path, k],
          message: `unknown operator "${k}" in ${what}: use ${allowed.filter(a => a !== 'field' && a !== 'latent').join(', ')}`
        })
      return bad.length === 0
    }
    if ('and' in v || 'or' in v) {
      const op = 'and' in v ? 'and' : 'or'
      if (!only([op], `an "${op}"`)) return undefined
      const list = v[op]
      if (!Array.isArray(list) || list.length === 0) {
        issues.push({ path: [...path, op], message: `"${op}" takes a non-empty list of conditions` })
        return undefined
      }
      const parts = list.map((c, i) => visit(c, [...path, op, i]))
      return parts.every(p => p) ? ({ [op]: parts as Slice[] } as Slice) : undefined
    }
    if ('not' in v) {
      if (!only(['not'], 'a "not"')) return undefined
      const inner = visit(v.not, [...path, 'not'])
      return inner && { not: inner }
    }
    if ('tokens' in v) {
      if (!only(['tokens'], 'a token-count condition')) return undefined
      const range = checkRange(v.tokens, [...path, 'tokens'], issues, 'tokens', true)
      return range && { tokens: range }
    }
    if ('latent' in v) {
      if (!only(['latent', ...RANGE_OPS], 'a latent condition')) return undefined
      const id = v.latent
      if (!(typeof id === 'number' && Number.isInteger(id) && id >= 0)) {
        issues.push({
          path: [...path, 'latent'],
          message: `a latent id is a non-negative integer, got ${JSON.stringify(id)}`
        })
        return undefined
      }
      const { latent: _, ...ops } = v
      const range = Object.keys(ops).length ? checkRange(ops, path, issues, `latent ${id}`, false) : {}
      return range && { latent: id, ...range }
    }
    if ('field' in v) {
      const field = v.field
      if (typeof field !== 'string' || metadataPath(field) === null) {
        issues.push({
          path: [...path, 'field'],
          message: `unknown field ${JSON.stringify(field)}: fields are "metadata.<key>" (token counts: { tokens: {...} }, latents: { latent: <id> })`
        })
        return undefined
      }
      if (!only(['field', ...FIELD_OPS], `a condition on ${field}`)) return undefined
      const ops = keys.filter(k => k !== 'field')
      if (ops.length === 0) {
        issues.push({ path, message: `the condition on ${field} has no operator: use ${FIELD_OPS.join(', ')}` })
        return undefined
      }
      const single = ops.filter(k => k === 'eq' || k === 'ne' || k === 'in' || k === 'exists')
      if (single.length && ops.length > 1) {
        issues.push({
          path,
          message: `"${single[0]}" on ${field} cannot be combined with ${ops
            .filter(k => k !== single[0])
            .map(k => `"${k}"`)
            .join(', ')}: use "and"`
        })
        return undefined
      }
      const op = single[0]
      if (op === 'eq' || op === 'ne') {
        if (!isScalar(v[op])) {
          issues.push({ path: [...path, op], message: `"${op}" takes a string, number, boolean or null` })
          return undefined
        }
        return { field, [op]: v[op] } as MetadataCondition
      }
      if (op === 'in') {
        const list = v.in
        if (!Array.isArray(list) || list.length === 0 || !list.every(isScalar)) {
          issues.push({
            path: [...path, 'in'],
            message: '"in" takes a non-empty list of strings, numbers, booleans or null'
          })
          return undefined
        }
        return { field, in: list as SliceScalar[] }
      }
      if (op === 'exists') {
        if (typeof v.exists !== 'boolean') {
          issues.push({ path: [...path, 'exists'], message: '"exists" takes true or false' })
          return undefined
        }
        return { field, exists: v.exists }
      }
      const range = checkRange(v, path, issues, field, false, ['field'])
      return range && { field, ...range }
    }
    issues.push({
      path,
      message: keys.length
        ? `unknown field${keys.length > 1 ? 's' : ''} ${keys.map(k => `"${k}"`).join(', ')}: ${FIELD_HELP}`
        : `empty condition: ${FIELD_HELP}`
    })
    return undefined
  }
  const out = visit(value, [])
  if (issues.length || !out) throw new SliceError(issues.length ? issues : [{ path: [], message: 'invalid slice' }])
  return out
}

function checkRange(
  v: unknown,
  path: (string | number)[],
  issues: SliceIssue[],
  what: string,
  integers: boolean,
  skip: string[] = []
): NumberRange | undefined {
  if (!isObject(v)) {
    issues.push({ path, message: `${what} takes a range object with gt, gte, lt and/or lte` })
    return undefined
  }
  const out: NumberRange = {}
  let ok = true
  const keys = Object.keys(v).filter(k => !skip.includes(k))
  if (keys.length === 0) {
    issues.push({ path, message: `the range on ${what} is empty: give gt, gte, lt and/or lte` })
    return undefined
  }
  for (const k of keys) {
    if (!(RANGE_OPS as readonly string[]).includes(k)) {
      issues.push({ path: [...path, k], message: `unknown operator "${k}" for ${what}: use gt, gte, lt, lte` })
      ok = false
      continue
    }
    const n = v[k]
    if (typeof n !== 'number' || !Number.isFinite(n) || (integers && !Number.isInteger(n))) {
      issues.push({
        path: [...path, k],
        message: `"${k}" on ${what} takes a${integers ? 'n integer' : ' number'}, got ${JSON.stringify(n)}`
      })
      ok = false
      continue
    }
    out[k as keyof NumberRange] = n
  }
  if (ok && out.gt !== undefined && out.gte !== undefined) {
    issues.push({ path, message: `give one of "gt" and "gte" on ${what}` })
    ok = false
  }
  if (ok && out.lt !== undefined && out.lte !== undefined) {
    issues.push({ path, message: `give one of "lt" and "lte" on ${what}` })
    ok = false
  }
  return ok
    ? (Object.fromEntries(RANGE_OPS.filter(k => out[k] !== undefined).map(k => [k, out[k]])) as NumberRange)
    : undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Text form

type Token = {
  kind: 'word' | 'number' | 'string' | 'op' | 'punct' | 'end'
  text: string
  value?: string | number
  at: number
}

const WORD = /[A-Za-z_][A-Za-z0-9_.-]*/y
const NUMBER = /-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y
const OPS = ['>=', '<=', '!=', '==', '=', '>', '<']

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  const fail = (message: string, at: number): never => {
    throw new SliceError([{ path: [], message: `${message} at character ${at + 1}`, at }])
  }
  while (i < src.length) {
    const c = src[i]
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '"' || c === "'") {
      let j = i + 1
      let s = ''
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          s += src[j + 1]
          j += 2
        } else s += src[j++]
      }
      if (j >= src.length) fail('unterminated string', i)
      out.push({ kind: 'string', text: src.slice(i, j + 1), value: s, at: i })
      i = j + 1
      continue
    }
    if ('(),[]'.includes(c)) {
      out.push({ kind: 'punct', text: c, at: i })
      i++
      continue
    }
    const op = OPS.find(o => src.startsWith(o, i))
    if (op) {
      out.push({ kind: 'op', text: op, at: i })
      i += op.length
      continue
    }
    NUMBER.lastIndex = i
    const num = NUMBER.exec(src)
    if (num && (c === '-' || /[\d.]/.test(c))) {
      out.push({ kind: 'number', text: num[0], value: Number(num[0]), at: i })
      i += num[0].length
      continue
    }
    WORD.lastIndex = i
    const word = WORD.exec(src)
    if (word) {
      out.push({ kind: 'word', text: word[0], at: i })
      i += word[0].length
      continue
    }
    let j = i
    while (j < src.length && !/[\s()[\],"'A-Za-z0-9_]/.test(src[j])) j++
    fail(`bad operator "${src.slice(i, Math.max(j, i + 1))}": use =, !=, <, <=, >, >=, in, exists, and, or, not`, i)
  }
  out.push({ kind: 'end', text: '', at: src.length })
  return out
}

const COMPARE: Record<string, 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte'> = {
  '=': 'eq',
  '==': 'eq',
  '!=': 'ne',
  '>': 'gt',
  '>=': 'gte',
  '<': 'lt',
  '<=': 'lte'
}

/**
 * Parse the text form into the AST (then checked like the JSON form). Grammar, loosest first:
 * `expr := and ("or" and)*`, `and := unary ("and" unary)*`, `unary := "not" unary | "(" expr ")" | condition`,
 * `condition := "latent" INT [cmp NUMBER] | "tokens" cmp INT | "metadata.<key>" (cmp VALUE | "in" "(" VALUE, ... ")" | "exists")`.
 */
export function parseSliceText(src: string): Slice {
  if (src.length > SLICE_MAX_TEXT)
    throw new SliceError([{ path: [], message: `a slice is at most ${SLICE_MAX_TEXT} characters` }])
  const tokens = tokenize(src)
  let p = 0
  const peek = () => tokens[p]
  const fail = (message: string, t: Token = peek()): never => {
    throw new SliceError([
      { path: [], message: `${message} at character ${t.at + 1}${t.kind === 'end' ? ' (end of input)' : ''}`, at: t.at }
    ])
  }
  const isWord = (t: Token, w: string) => t.kind === 'word' && t.text.toLowerCase() === w
  const describe = (t: Token) => (t.kind === 'end' ? 'the end' : `"${t.text}"`)

  const value = (): SliceScalar => {
    const t = tokens[p++]
    if (t.kind === 'string' || t.kind === 'number') return t.value!
    if (isWord(t, 'true')) return true
    if (isWord(t, 'false')) return false
    if (isWord(t, 'null')) return null
    return fail(`expected a value (a "quoted string", a number, true, false or null), got ${describe(t)}`, t)
  }
  const number = (what: string, integer: boolean): number => {
    const t = tokens[p++]
    if (t.kind !== 'number' || (integer && !Number.isInteger(t.value)))
      fail(`${what} takes a${integer ? 'n integer' : ' number'}, got ${describe(t)}`, t)
    return t.value as number
  }
  const compareOp = (after: string, allowed: string[]): string => {
    const t = tokens[p++]
    const op = t.kind === 'op' ? COMPARE[t.text] : undefined
    if (!op || !allowed.includes(op))
      fail(
        `bad operator ${describe(t)} after ${after}: use ${allowed.map(o => Object.keys(COMPARE).find(k => COMPARE[k] === o)).join(', ')}${after.startsWith('metadata.') ? ', in, exists' : ''}`,
        t
      )
    return op!
  }

  const condition = (): Slice => {
    const t = peek()
    if (isWord(t, 'latent')) {
      p++
      const id = number('latent', true)
      if (peek().kind !== 'op') return { latent: id }
      const op = compareOp(`latent ${id}`, ['gt', 'gte', 'lt', 'lte'])
      return { latent: id, [op]: number(`latent ${id} ${op}`, false) }
    }
    if (isWord(t, 'tokens')) {
      p++
      const op = compareOp('tokens', ['gt', 'gte', 'lt', 'lte'])
      return { tokens: { [op]: number('tokens', true) } }
    }
    if (t.kind === 'word' && metadataPath(t.text)) {
      p++
      const field = t.text
      if (isWord(peek(), 'exists')) {
        p++
        return { field, exists: true }
      }
      if (isWord(peek(), 'in')) {
        p++
        const open = tokens[p++]
        if (open.text !== '(' && open.text !== '[')
          fail(`"in" takes a list in parentheses, e.g. ${field} in ("x", "y")`, open)
        const list: SliceScalar[] = [value()]
        while (peek().text === ',') {
          p++
          list.push(value())
        }
        const close = tokens[p++]
        if (close.text !== (open.text === '(' ? ')' : ']'))
          fail(
            `expected "," or "${open.text === '(' ? ')' : ']'}" in the list of ${field}, got ${describe(close)}`,
            close
          )
        return { field, in: list }
      }
      const op = compareOp(field, ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'])
      if (op === 'eq' || op === 'ne') return { field, [op]: value() } as MetadataCondition
      return { field, [op]: number(`${field} ${op}`, false) } as MetadataCondition
    }
    if (t.kind === 'word') fail(`unknown field "${t.text}": use metadata.<key>, tokens, or latent <id>`, t)
    return fail(
      `expected a condition (metadata.<key> ..., tokens ..., latent <id> ..., not ..., or "("), got ${describe(t)}`,
      t
    )
  }
  const unary = (): Slice => {
    if (isWord(peek(), 'not')) {
      p++
      return { not: unary() }
    }
    if (peek().text === '(') {
      p++
      const inner = expr()
      if (peek().text !== ')') fail(`expected ")", got ${describe(peek())}`)
      p++
      return inner
    }
    return condition()
  }
  const chain = (word: 'and' | 'or', next: () => Slice): Slice => {
    const parts = [next()]
    while (isWord(peek(), word)) {
      p++
      parts.push(next())
    }
    return parts.length === 1 ? parts[0] : ({ [word]: parts } as Slice)
  }
  const expr = (): Slice => chain('or', () => chain('and', unary))
  if (peek().kind === 'end') fail('empty slice')
  const ast = expr()
  if (peek().kind !== 'end') fail(`expected "and", "or" or the end, got ${describe(peek())}`)
  return checkSlice(ast)
}

/** A query-string slice: JSON (starting with "{") or the text form. Empty means the whole dataset (undefined). */
export function parseSliceParam(raw: string): Slice | undefined {
  const s = raw.trim()
  if (s === '') return undefined
  if (s.startsWith('{')) {
    let json: unknown
    try {
      json = JSON.parse(s)
    } catch (e) {
      throw new SliceError([
        { path: [], message: `the slice looks like JSON but does not parse: ${(e as Error).message}` }
      ])
    }
    return checkSlice(json)
  }
  return parseSliceText(s)
}

const quote = (v: SliceScalar) => JSON.stringify(v)
const RANGE_TEXT: Record<keyof NumberRange, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' }
const rangeText = (subject: string, r: NumberRange) =>
  RANGE_OPS.filter(k => r[k] !== undefined).map(k => `${subject} ${RANGE_TEXT[k]} ${r[k]}`)

/** The canonical text form of a slice (parses back to the same AST; used to name slices in results). */
export function sliceToText(s: Slice, top = true): string {
  if ('and' in s || 'or' in s) {
    const op = 'and' in s ? 'and' : 'or'
    const parts = ('and' in s ? s.and : (s as { or: Slice[] }).or).map(c => sliceToText(c, false))
    const joined = parts.join(` ${op} `)
    return top ? joined : `(${joined})`
  }
  if ('not' in s) return `not ${sliceToText(s.not, false)}`
  if ('tokens' in s) {
    const parts = rangeText('tokens', s.tokens)
    return parts.length > 1 && !top ? `(${parts.join(' and ')})` : parts.join(' and ')
  }
  if ('latent' in s) {
    const { latent, ...r } = s
    const parts = rangeText(`latent ${latent}`, r)
    if (!parts.length) return `latent ${latent}`
    return parts.length > 1 && !top ? `(${parts.join(' and ')})` : parts.join(' and ')
  }
  const c = s as MetadataCondition & Record<string, unknown>
  if ('eq' in c) return `${c.field} = ${quote(c.eq as SliceScalar)}`
  if ('ne' in c) return `${c.field} != ${quote(c.ne as SliceScalar)}`
  if ('in' in c) return `${c.field} in (${(c.in as SliceScalar[]).map(quote).join(', ')})`
  if ('exists' in c) return c.exists ? `${c.field} exists` : `not ${c.field} exists`
  const parts = rangeText(c.field, c as NumberRange)
  return parts.length > 1 && !top ? `(${parts.join(' and ')})` : parts.join(' and ')
}

/** What evaluating a slice needs from the store: which documents columns, and which latents' by-latent pages. */
export function sliceNeeds(s: Slice): { metadata: boolean; tokens: boolean; latents: number[] } {
  const out = { metadata: false, tokens: false, latents: new Set<number>() }
  const walk = (n: Slice): void => {
    if ('and' in n) n.and.forEach(walk)
    else if ('or' in n) n.or.forEach(walk)
    else if ('not' in n) walk(n.not)
    else if ('tokens' in n) out.tokens = true
    else if ('latent' in n) out.latents.add(n.latent)
    else out.metadata = true
  }
  walk(s)
  return { metadata: out.metadata, tokens: out.tokens, latents: [...out.latents].sort((a, b) => a - b) }
}

/** The metadata fields a slice names, e.g. ["metadata.model"]. */
export function sliceFields(s: Slice): string[] {
  const out = new Set<string>()
  const walk = (n: Slice): void => {
    if ('and' in n) n.and.forEach(walk)
    else if ('or' in n) n.or.forEach(walk)
    else if ('not' in n) walk(n.not)
    else if ('field' in n) out.add(n.field)
  }
  walk(s)
  return [...out]
}

/** zod: a slice in JSON form (request bodies), checked and canonical. */
export const SliceSchema: z.ZodType<Slice> = z
  .unknown()
  .transform((v, ctx) => {
    try {
      return checkSlice(v)
    } catch (e) {
      if (!(e instanceof SliceError)) throw e
      for (const i of e.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path })
      return z.NEVER
    }
  })
  .meta({
    description:
      'a slice (JSON form): conditions on metadata, token counts and latents combined with and/or/not; see docs/slices.md'
  }) as unknown as z.ZodType<Slice>

/**
 * zod: a slice in a query string (JSON or text form; empty means the whole dataset), or already in JSON form (an
 * analysis job's stored request is re-validated with the same query schema).
 */
/**
 * The slice of b a comparison uses when the caller gives none: a slice of a dataset compared with that same dataset
 * is compared with the rest of it (`not aWhere`), not with a whole that contains it, whose overlapping samples would
 * make the independent-samples tests overconfident and shrink every difference. Otherwise undefined (the whole of b).
 */
export function restOfSlice(a: string, aWhere: Slice | undefined, b: string): Slice | undefined {
  if (!aWhere || a !== b) return undefined
  return 'not' in aWhere ? aWhere.not : { not: aWhere }
}

export const SliceParam = z
  .union([z.string().max(SLICE_MAX_TEXT), z.record(z.string(), z.unknown())])
  .transform((v, ctx) => {
    try {
      return typeof v === 'string' ? parseSliceParam(v) : checkSlice(v)
    } catch (e) {
      if (!(e instanceof SliceError)) throw e
      for (const i of e.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path })
      return z.NEVER
    }
  })
  .describe(
    'a slice of the dataset, as text (metadata.model = "x" and latent 123 > 0.5) or JSON; see docs/slices.md'
  ) as unknown as
  // Typed to take a Slice as input too (the interfaces have no index signature, which a record schema's input needs).
  z.ZodType<Slice | undefined, string | Slice>

/**
 * A slice as a query-string value (clients): text passes through, an object is checked (SliceError on a bad one,
 * before any request) and sent as JSON; undefined is the whole dataset ('').
 */
export function sliceQueryValue(s: Slice | string | undefined): string {
  if (s === undefined) return ''
  return typeof s === 'string' ? s : JSON.stringify(checkSlice(s))
}
