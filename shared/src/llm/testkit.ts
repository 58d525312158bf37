/** @module A scripted OpenAI-compatible chat server on loopback for tests: well-formed, malformed, slow and failing answers, and a record of every request. */
import { createServer, type Server } from 'node:http'
import { countChatTokens, countTokens, type ChatMessage } from './cost.ts'

/** One scripted answer. `delayMs` holds the answer back (a slow server); `status` other than 200 fails the request. */
export type ScriptedReply =
  | { json: unknown; delayMs?: number }
  | { content: string; delayMs?: number }
  | { status: number; retryAfter?: string; retryAfterMs?: number; body?: string; delayMs?: number }

export interface RecordedRequest {
  model: string
  messages: ChatMessage[]
  temperature: number | undefined
  maxTokens: number | undefined
  responseFormat: unknown
  authorization: string | undefined
  /** The status answered. */
  status: number
  /** The usage reported (0s for failures). */
  usage: { prompt_tokens: number; completion_tokens: number }
}

export interface ScriptedLlmOptions {
  /** Answers a request when no one-shot reply is queued (default: `{ json: {} }`). */
  respond?: (req: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>
  /** Report usage in answers (default true). */
  reportUsage?: boolean
  /** Multiply the reported usage (default 1): a server whose tokenizer counts differently from countTokens. */
  usageScale?: number
}

export interface ScriptedLlm {
  /** e.g. http://127.0.0.1:40123/v1 */
  baseURL: string
  requests: RecordedRequest[]
  /** Queue one-shot replies, used in order before `respond`. */
  enqueue(...replies: ScriptedReply[]): void
  setResponder(respond: ScriptedLlmOptions['respond']): void
  /** Sums of the usage reported for successful answers. */
  usage(): { inputTokens: number; outputTokens: number; calls: number }
  close(): Promise<void>
}

/** Every user message of a request, joined: a retried request still carries the original question. */
export function userText(req: Pick<RecordedRequest, 'messages'>): string {
  return req.messages
    .filter(m => m.role === 'user')
    .map(m => m.content)
    .join('\n\n')
}

/** The last user message of a request. */
export function lastUserMessage(req: Pick<RecordedRequest, 'messages'>): string {
  for (let i = req.messages.length - 1; i >= 0; i--) if (req.messages[i].role === 'user') return req.messages[i].content
  return ''
}

/**
 * Starts the server on 127.0.0.1, port 0. Usage is computed by a documented rule: prompt_tokens =
 * round(countChatTokens(messages) * usageScale) and completion_tokens = round(countTokens(answer) * usageScale)
 * (shared/src/llm/cost.ts). With usageScale 1, tests of dry-run estimates check the planning of calls and their expected
 * answers; with another scale, a server whose tokenizer differs, which the client must learn (LlmClient.tokenScale).
 */
export async function startScriptedLlm(options: ScriptedLlmOptions = {}): Promise<ScriptedLlm> {
  const queue: ScriptedReply[] = []
  const requests: RecordedRequest[] = []
  let respond = options.respond ?? (() => ({ json: {} }))
  const reportUsage = options.reportUsage ?? true
  const usageScale = options.usageScale ?? 1
  const server: Server = createServer((req, res) => {
    let gone = false
    res.on('close', () => {
      gone = true
    })
    let body = ''
    req.on('data', c => {
      body += c
    })
    req.on('end', async () => {
      if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url ?? '')) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }))
        return
      }
      let parsed: Record<string, unknown>
      try {
        parsed = JSON.parse(body)
      } catch {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'body is not JSON' } }))
        return
      }
      const rec: RecordedRequest = {
        model: String(parsed.model),
        messages: (parsed.messages ?? []) as ChatMessage[],
        temperature: parsed.temperature as number | undefined,
        maxTokens: parsed.max_tokens as number | undefined,
        responseFormat: parsed.response_format,
        authorization: req.headers.authorization,
        status: 0,
        usage: { prompt_tokens: 0, completion_tokens: 0 }
      }
      requests.push(rec)
      let reply: ScriptedReply
      try {
        reply = queue.shift() ?? (await respond(rec))
      } catch (err) {
        reply = {
          status: 500,
          body: JSON.stringify({ error: { message: `scripted responder threw: ${(err as Error).message}` } })
        }
      }
      if (reply.delayMs) await new Promise(ok => setTimeout(ok, reply.delayMs))
      if (gone || res.destroyed) return // the client gave up (timeout)
      if ('status' in reply) {
        rec.status = reply.status
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter
        if (reply.retryAfterMs !== undefined) headers['retry-after-ms'] = String(reply.retryAfterMs)
        res
          .writeHead(reply.status, headers)
          .end(reply.body ?? JSON.stringify({ error: { message: `scripted ${reply.status}`, type: 'scripted' } }))
        return
      }
      const content = 'json' in reply ? JSON.stringify(reply.json) : reply.content
      rec.status = 200
      rec.usage = {
        prompt_tokens: Math.round(countChatTokens(rec.messages) * usageScale),
        completion_tokens: Math.round(countTokens(content) * usageScale)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: `chatcmpl-${requests.length}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: rec.model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
          ...(reportUsage
            ? { usage: { ...rec.usage, total_tokens: rec.usage.prompt_tokens + rec.usage.completion_tokens } }
            : {})
        })
      )
    })
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...replies) => {
      queue.push(...replies)
    },
    setResponder: r => {
      respond = r ?? (() => ({ json: {} }))
    },
    usage: () => {
      const ok = requests.filter(r => r.status === 200)
      return {
        calls: ok.length,
        inputTokens: ok.reduce((a, r) => a + r.usage.prompt_tokens, 0),
        outputTokens: ok.reduce((a, r) => a + r.usage.completion_tokens, 0)
      }
    },
    close: () =>
      new Promise<void>(ok => {
        server.closeAllConnections()
        server.close(() => ok())
      })
  }
}
