/** @module Turns a source document into reader input: token ids, a pool mask (BOS, special tokens and unpooled chat roles masked) and windows. */
import type { Tokenizer } from '@huggingface/tokenizers'
import { Template } from '@huggingface/jinja'
import type { ChatMessage } from '@latentbase/shared/contract/dataset'

/** What preparing a document needs from the encoder (the runtime's PrepareContext plus the dataset's poolRoles). */
export interface PrepareContext {
  tokenizer: Tokenizer
  maxTokens: number
  prependBos: boolean
  bosTokenId: number | null
  eosTokenId?: number | null
  specialTokenIds: Set<number>
  longDocuments: 'truncate' | 'window'
  /** Chat roles whose message content is pooled, e.g. ['assistant']. */
  poolRoles: readonly string[]
  /** The tokenizer's Jinja chat template; null or absent: read from tokenizerConfig, else FALLBACK_CHAT_TEMPLATE. */
  chatTemplate?: string | null
  /** tokenizer_config.json: token strings for the template (bos_token, eos_token, ...). */
  tokenizerConfig?: Record<string, unknown>
  /** `window` mode: at most this many windows per document; the rest is cut and the document marked truncated. */
  maxWindows?: number
}

/** One row of reader input: at most maxTokens ids, with its own BOS when prependBos. */
export interface PreparedWindow {
  ids: Int32Array
  /** 1 = pooled, 0 = BOS, special token or a token of a role that is not pooled. */
  poolMask: Uint8Array
  /** Window token t is document token offset + t (the window's own BOS sits on a position never pooled). */
  offset: number
  pooledTokens: number
}

export interface PreparedDocument {
  /** The text the tokens came from: the document text, or the rendered chat. */
  text: string
  /** The document's tokens as read: BOS (once) and the kept tokens. */
  ids: Int32Array
  poolMask: Uint8Array
  /** One window in truncate mode; consecutive windows in window mode (the caller max-pools over them). */
  windows: PreparedWindow[]
  truncated: boolean
  /** Tokens of the document that were read (= ids.length; a window's repeated BOS is not counted). */
  tokenCount: number
  pooledTokens: number
  masked: { special: number; role: number }
}

/** The chat format used when the tokenizer has no chat template: "role: content" turns separated by a blank line. */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] }}{% if not loop.last %}{{ '\n\n' }}{% endif %}{% endfor %}"

/** Token ids, special tokens and the chat template of a tokenizer.json + tokenizer_config.json pair. */
export function tokenizerInfo(
  tokenizer: Tokenizer,
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>
) {
  const specialTokenIds = new Set<number>()
  for (const t of (tokenizerJson.added_tokens ?? []) as Array<{ id?: number; special?: boolean }>) {
    if (t.special && typeof t.id === 'number') specialTokenIds.add(t.id)
  }
  const bosTokenId = tokenIdOf(tokenizer, tokenizerConfig.bos_token)
  const eosTokenId = tokenIdOf(tokenizer, tokenizerConfig.eos_token)
  const padTokenId = tokenIdOf(tokenizer, tokenizerConfig.pad_token) ?? eosTokenId ?? 0
  for (const id of [bosTokenId, eosTokenId]) if (id !== null) specialTokenIds.add(id)
  return { specialTokenIds, bosTokenId, eosTokenId, padTokenId, chatTemplate: chatTemplateOf(tokenizerConfig) }
}

/** A token given as tokenizer_config.json writes it: a string, or an AddedToken object with `content`. */
export function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content
  return null
}

function tokenIdOf(tokenizer: Tokenizer, value: unknown): number | null {
  const s = tokenString(value)
  return s === null ? null : (tokenizer.token_to_id(s) ?? null)
}

/** `chat_template` as a string (a list of named templates gives its `default`). */
export function chatTemplateOf(config: Record<string, unknown> | undefined): string | null {
  const t = config?.chat_template
  if (typeof t === 'string') return t
  if (Array.isArray(t))
    return (t as Array<{ name?: string; template?: string }>).find(x => x.name === 'default')?.template ?? null
  if (t && typeof t === 'object' && typeof (t as Record<string, unknown>).default === 'string')
    return (t as Record<string, string>).default
  return null
}

const compiled = new Map<string, Template>()
function template(source: string): Template {
  let t = compiled.get(source)
  if (!t) {
    t = new Template(source)
    if (compiled.size > 32) compiled.clear()
    compiled.set(source, t)
  }
  return t
}

/** A piece of rendered chat text, and whether its tokens are pooled. */
export interface ChatSegment {
  text: string
  pooled: boolean
}

export interface RenderedChat {
  text: string
  segments: ChatSegment[]
  /** Messages of a pooled role whose content could not be found in the rendered text (left unpooled). */
  unlocated: number
}

const PLACEHOLDER = /\uE000(\d+)\uE001/g
const placeholder = (i: number) => `\uE000${i}\uE001`

/**
 * Renders messages with the chat template and cuts the result into template text and message
 * contents. The template is also rendered with a placeholder for each content, which gives the
 * text around every content exactly; the real rendering must then equal that skeleton with each
 * content (or, for templates that strip it, its trimmed form) put back. Templates that transform
 * contents further fall back to finding each content in order.
 */
export function renderChat(messages: readonly ChatMessage[], ctx: PrepareContext): RenderedChat {
  const source = ctx.chatTemplate ?? chatTemplateOf(ctx.tokenizerConfig) ?? FALLBACK_CHAT_TEMPLATE
  const tpl = template(source)
  const tokenText = (key: string, id: number | null | undefined) =>
    tokenString(ctx.tokenizerConfig?.[key]) ??
    (id !== null && id !== undefined ? (ctx.tokenizer.id_to_token(id) ?? '') : '')
  const vars: Record<string, unknown> = {
    bos_token: tokenText('bos_token', ctx.bosTokenId),
    eos_token: tokenText('eos_token', ctx.eosTokenId),
    unk_token: tokenString(ctx.tokenizerConfig?.unk_token) ?? '',
    pad_token: tokenString(ctx.tokenizerConfig?.pad_token) ?? '',
    add_generation_prompt: false
  }
  const pooledRole = messages.map(m => ctx.poolRoles.includes(m.role))
  const text = tpl.render({ ...vars, messages: messages.map(m => ({ role: m.role, content: m.content })) })

  let skeleton: string | null = null
  try {
    skeleton = tpl.render({ ...vars, messages: messages.map((m, i) => ({ role: m.role, content: placeholder(i) })) })
  } catch {
    /* the template inspects contents: fall back to searching */
  }
  if (skeleton !== null) {
    const literals: string[] = []
    const order: number[] = []
    let last = 0
    for (const m of skeleton.matchAll(PLACEHOLDER)) {
      literals.push(skeleton.slice(last, m.index))
      order.push(Number(m[1]))
      last = m.index! + m[0].length
    }
    literals.push(skeleton.slice(last))
    if (order.every(i => i < messages.length)) {
      for (const form of [(s: string) => s, (s: string) => s.trim()]) {
        let rebuilt = literals[0]
        for (let k = 0; k < order.length; k++) rebuilt += form(messages[order[k]].content) + literals[k + 1]
        if (rebuilt !== text) continue
        const segments: ChatSegment[] = []
        for (let k = 0; k < order.length; k++) {
          segments.push({ text: literals[k], pooled: false })
          segments.push({ text: form(messages[order[k]].content), pooled: pooledRole[order[k]] })
        }
        segments.push({ text: literals[order.length], pooled: false })
        const shown = new Set(order)
        const unlocated = messages.reduce(
          (n, m, i) => n + (pooledRole[i] && !shown.has(i) && m.content.trim() !== '' ? 1 : 0),
          0
        )
        return { text, segments: segments.filter(s => s.text !== ''), unlocated }
      }
    }
  }

  const segments: ChatSegment[] = []
  let cursor = 0
  let unlocated = 0
  messages.forEach((m, i) => {
    for (const needle of [m.content, m.content.trim()]) {
      if (needle === '') return
      const at = text.indexOf(needle, cursor)
      if (at === -1) continue
      segments.push({ text: text.slice(cursor, at), pooled: false })
      segments.push({ text: needle, pooled: pooledRole[i] })
      cursor = at + needle.length
      return
    }
    if (pooledRole[i]) unlocated++
  })
  segments.push({ text: text.slice(cursor), pooled: false })
  return { text, segments: segments.filter(s => s.text !== ''), unlocated }
}

/** Added-token strings (e.g. "<s>", "<|im_end|>"), longest first, to tell whether text ends with one. */
const addedTokenCache = new WeakMap<Tokenizer, string[]>()
function addedTokens(tokenizer: Tokenizer): string[] {
  let list = addedTokenCache.get(tokenizer)
  if (!list) {
    list = [...tokenizer.get_added_tokens_decoder().values()]
      .map(t => t.content)
      .filter(Boolean)
      .sort((a, b) => b.length - a.length)
    addedTokenCache.set(tokenizer, list)
  }
  return list
}

const encodeIds = (tokenizer: Tokenizer, text: string): number[] =>
  tokenizer.encode(text, { add_special_tokens: false }).ids

/**
 * Tokenizes a segment that follows `before` in the same string so that its tokens match what the
 * whole string would give: the character before it is encoded along and its tokens dropped
 * (tokenizers that prepend a word marker, like Llama's, otherwise start every segment with one).
 * After an added token the tokenizer starts a fresh section anyway, so no context is needed.
 */
function encodeSegment(tokenizer: Tokenizer, before: string, text: string): number[] {
  if (before === '' || addedTokens(tokenizer).some(t => before.endsWith(t))) return encodeIds(tokenizer, text)
  const cp = before.codePointAt(before.length - 1)!
  const ctxChar = cp >= 0xdc00 && cp <= 0xdfff && before.length >= 2 ? before.slice(-2) : before.slice(-1)
  const prefix = encodeIds(tokenizer, ctxChar)
  const both = encodeIds(tokenizer, ctxChar + text)
  for (let i = 0; i < prefix.length; i++) if (both[i] !== prefix[i]) return encodeIds(tokenizer, text)
  return both.slice(prefix.length)
}

/**
 * The first `budget` (+ a margin) tokens of a long text without tokenizing all of it (truncate mode:
 * BPE cost grows with the text). Starts from 3 characters a token and doubles the prefix until it
 * holds enough tokens; null when the whole text is as short.
 */
function encodePrefix(tokenizer: Tokenizer, text: string, budget: number): number[] | null {
  const need = budget + 16
  for (let want = need * 3; want * 1.5 < text.length; want *= 2) {
    // Cut at whitespace so the tokens up to the cut are those of the full text.
    let cut = text.lastIndexOf(' ', want)
    if (cut < want / 2) cut = want
    const code = text.charCodeAt(cut - 1)
    if (code >= 0xd800 && code <= 0xdbff) cut--
    const ids = encodeIds(tokenizer, text.slice(0, cut))
    if (ids.length >= need) return ids
  }
  return null
}

/**
 * Prepares one document for the reader. BOS is put first exactly once when prependBos (never
 * twice, whether or not the tokenizer or the chat template adds one); BOS and special tokens are
 * never pooled; for chat documents only the content tokens of messages whose role is in poolRoles
 * are pooled. Longer documents are cut to maxTokens (`truncate`) or split into consecutive windows
 * of maxTokens, each with its own BOS (`window`).
 */
export function prepareDocument(
  doc: { id?: string; text?: string; messages?: readonly ChatMessage[]; metadata?: Record<string, unknown> },
  ctx: PrepareContext
): PreparedDocument {
  const { tokenizer } = ctx
  const bos = ctx.prependBos ? ctx.bosTokenId : null
  if (ctx.prependBos && bos === null) throw new Error('prependBos is set but the tokenizer has no BOS token')
  const budget = Math.max(1, ctx.maxTokens - (bos !== null ? 1 : 0))
  const truncateMode = ctx.longDocuments === 'truncate'
  let text: string
  let content: number[]
  let pooled: Uint8Array

  if (doc.messages !== undefined) {
    const rendered = renderChat(doc.messages, ctx)
    text = rendered.text
    content = []
    const flags: number[] = []
    let before = ''
    const segs = rendered.segments.map(s => ({ ...s }))
    // Spaces at a boundary go with the next segment, as a word-initial space does in the whole string.
    for (let k = 0; k + 1 < segs.length; k++) {
      const m = /[ ]+$/.exec(segs[k].text)
      if (m && m.index > 0) {
        segs[k + 1].text = m[0] + segs[k + 1].text
        segs[k].text = segs[k].text.slice(0, m.index)
      }
    }
    for (const seg of segs) {
      if (seg.text === '') continue
      const ids = encodeSegment(tokenizer, before, seg.text)
      before += seg.text
      for (const id of ids) {
        content.push(id)
        flags.push(seg.pooled ? 1 : 0)
      }
      // truncate mode needs no more than budget tokens (+1: a BOS rendered by the template) and one to know it cut.
      if (truncateMode && content.length > budget + 1) break
    }
    pooled = Uint8Array.from(flags)
  } else if (doc.text !== undefined) {
    text = doc.text
    const prefix = truncateMode ? encodePrefix(tokenizer, text, budget + 1) : null
    content = prefix ?? encodeIds(tokenizer, text)
    pooled = new Uint8Array(content.length).fill(1)
  } else {
    throw new Error('a document needs text or messages')
  }

  // A BOS the template rendered (Llama 2 chat) is the one BOS: it is not put in a second time.
  let from = 0
  if (bos !== null && content.length > 0 && content[0] === bos) from = 1
  const n = content.length - from
  let kept: number
  let truncated = false
  let windows = 1
  if (truncateMode || n <= budget) {
    kept = Math.min(n, budget)
    truncated = n > budget
  } else {
    windows = Math.ceil(n / budget)
    const maxWindows = ctx.maxWindows ?? Infinity
    if (windows > maxWindows) {
      windows = maxWindows
      truncated = true
    }
    kept = Math.min(n, windows * budget)
  }

  const lead = bos !== null ? 1 : 0
  const ids = new Int32Array(lead + kept)
  const poolMask = new Uint8Array(lead + kept)
  if (bos !== null) ids[0] = bos
  let special = lead
  let role = 0
  for (let i = 0; i < kept; i++) {
    const id = content[from + i]
    ids[lead + i] = id
    if (id === bos || ctx.specialTokenIds.has(id)) special++
    else if (pooled[from + i] === 0) role++
    else poolMask[lead + i] = 1
  }

  const out: PreparedWindow[] = []
  if (windows === 1) {
    out.push({ ids, poolMask, offset: 0, pooledTokens: count(poolMask) })
  } else {
    for (let w = 0; w < windows; w++) {
      const start = w * budget
      const end = Math.min(kept, start + budget)
      const wIds = new Int32Array(lead + end - start)
      const wMask = new Uint8Array(lead + end - start)
      if (bos !== null) wIds[0] = bos
      wIds.set(ids.subarray(lead + start, lead + end), lead)
      wMask.set(poolMask.subarray(lead + start, lead + end), lead)
      out.push({ ids: wIds, poolMask: wMask, offset: start, pooledTokens: count(wMask) })
    }
  }
  return {
    text,
    ids,
    poolMask,
    windows: out,
    truncated,
    tokenCount: ids.length,
    pooledTokens: count(poolMask),
    masked: { special, role }
  }
}

function count(mask: Uint8Array): number {
  let n = 0
  for (let i = 0; i < mask.length; i++) n += mask[i]
  return n
}
