/** @module Runs examples/paper_workflow.py against the real local server: without an LLM (step 4 skipped, saying so) and with a scripted OpenAI-compatible LLM. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import {
  startScriptedLlm,
  userText,
  type RecordedRequest,
  type ScriptedLlm,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import { startLocal } from '@latentbase/api/local-server'

const SCRIPT = fileURLToPath(new URL('./paper_workflow.py', import.meta.url))
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')
let encoders: Map<string, LoadedEncoder>
let dir: string

before(async () => {
  encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  dir = await mkdtemp(join(tmpdir(), 'latentbase-example-'))
})
after(() => rm(dir, { recursive: true, force: true }))

function runExample(url: string): Promise<{ code: number | null; output: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(PYTHON, [SCRIPT, '--base-url', url, '--per-side', '10', '--hypotheses', '2'], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }
    })
    let output = ''
    child.stdout.on('data', d => {
      output += d
    })
    child.stderr.on('data', d => {
      output += d
    })
    child.on('error', fail)
    child.on('close', code => ok({ code, output }))
  })
}

async function withServer<T>(name: string, fn: (url: string) => Promise<T>): Promise<T> {
  const server = await startLocal({ dataDir: join(dir, name), port: 0, encoders, log: () => {} })
  try {
    return await fn(server.url)
  } finally {
    await server.close()
  }
}

test('without an LLM: encode, diff, latent pages, and step 4 skipped with the reason', async () => {
  const saved = { url: process.env.LLM_BASE_URL, model: process.env.LLM_MODEL }
  delete process.env.LLM_BASE_URL
  delete process.env.LLM_MODEL
  try {
    const { code, output } = await withServer('plain', runExample)
    assert.equal(code, 0, output)
    assert.match(output, /spam \(ds_\w+\): 10 documents/)
    assert.equal(output.match(/^ {3}latent +\d+ +spam /gm)?.length, 10, 'ten diff rows')
    assert.equal(output.match(/^ {3}latent \d+: .*; in \d+ of 10 spam emails/gm)?.length, 3, 'three latent pages')
    assert.match(output, /4\. Hypotheses[\s\S]*skipped: .*no LLM is configured: set LLM_BASE_URL/)
  } finally {
    if (saved.url !== undefined) process.env.LLM_BASE_URL = saved.url
    if (saved.model !== undefined) process.env.LLM_MODEL = saved.model
  }
})

test('with an LLM: hypotheses cite latents and are verified on held-out emails', async () => {
  // Proposes two word hypotheses; judges by whether the email contains the word (held-out documents only).
  const respond = (req: RecordedRequest): ScriptedReply => {
    const user = userText(req)
    if (/^Latent \d+:/m.test(user)) {
      const cited = Number(/^Latent (\d+):/m.exec(user)![1])
      return {
        json: {
          hypotheses: [
            { text: "This response mentions 'click'.", latents: [cited] },
            { text: "This response mentions 'zzyzx'.", latents: [] }
          ]
        }
      }
    }
    const word = /Statement: [^\n]*'([^']+)'/.exec(user)?.[1]
    const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1]
    if (word === undefined || doc === undefined) return { content: 'unsure' }
    return { json: { answer: doc.toLowerCase().includes(word) ? 'YES' : 'NO' } }
  }
  const llm: ScriptedLlm = await startScriptedLlm({ respond })
  process.env.LLM_BASE_URL = llm.baseURL
  process.env.LLM_MODEL = 'scripted'
  try {
    const { code, output } = await withServer('llm', runExample)
    assert.equal(code, 0, output)
    assert.match(output, /H0: This response mentions 'click'\. \(latents \d+\)/)
    assert.match(output, /H1: This response mentions 'zzyzx'\. \(latents none\)/)
    // 'zzyzx' is in no email: both shares 0, never valid.
    assert.match(output, /not valid +spam 0\.00 vs ham 0\.00 .*'zzyzx'/)
    assert.match(output, /\d of 2 hypotheses valid at alpha 0\.05/)
    assert.ok(llm.requests.length > 2, 'the judge was called')
  } finally {
    delete process.env.LLM_BASE_URL
    delete process.env.LLM_MODEL
    await llm.close()
  }
})
