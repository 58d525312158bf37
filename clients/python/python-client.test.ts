/** @module Runs the Python client's unittest suite (Debian's python3, pandas) against the real local server with two encoded datasets. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { signWebhook, generateWebhookSecret } from '@latentbase/shared/webhooks/sign'
import { startDemoServer, type DemoServer } from '../../api/src/testing/demo-server.ts'

/** Debian's python3 (where CI installs python3-pandas), else the one on PATH; PYTHON overrides. */
export const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')
const here = fileURLToPath(new URL('.', import.meta.url))

let demo: DemoServer
before(async () => {
  demo = await startDemoServer(12)
})
after(() => demo?.close())

function runPython(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(PYTHON, args, { cwd: here, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' } })
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

test('the Python client passes its unittest suite against the local server', async () => {
  const secret = generateWebhookSecret()
  const timestamp = Math.floor(Date.now() / 1000)
  const body = JSON.stringify({ type: 'dataset.ready', data: { id: demo.spam, status: 'ready' } })
  const webhook = {
    secret,
    id: 'msg_test',
    timestamp,
    body,
    signature: await signWebhook(secret, 'msg_test', timestamp, body)
  }
  const { code, output } = await runPython(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
    LATENTBASE_URL: demo.server.url,
    LATENTBASE_TEST_FIXTURE: JSON.stringify({ spam: demo.spam, ham: demo.ham, documents: demo.documents }),
    LATENTBASE_TEST_WEBHOOK: JSON.stringify(webhook)
  })
  const summary = /Ran (\d+) tests?/.exec(output)
  console.log(`python unittest (${PYTHON}): ${summary?.[0] ?? 'no summary'}`)
  assert.equal(code, 0, output)
  assert.ok(summary && Number(summary[1]) >= 15, output)
})
