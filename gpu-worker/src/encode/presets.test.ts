/** @module The preset encoder.json files parse under the published contract and name the hooks their readers export. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EncoderConfig } from '@latentbase/shared/contract/encoder'

const dir = fileURLToPath(new URL('../../encoders/presets/', import.meta.url))

test('every preset is a valid encoder.json whose reader output index matches its hook', async () => {
  const names = (await readdir(dir, { withFileTypes: true })).filter(e => e.isDirectory()).map(e => e.name)
  assert.equal(names.length, 3)
  for (const name of names) {
    const config = EncoderConfig.parse(JSON.parse(await readFile(join(dir, name, 'encoder.json'), 'utf8')))
    assert.equal(config.id, name)
    // hidden_states[i] = blocks.{i}.hook_resid_pre = blocks.{i-1}.hook_resid_post (gpu-worker/tools/export_reader.py).
    const index = Number(String(config.reader.output).replace('hidden_states.', ''))
    const m = /^blocks\.(\d+)\.hook_resid_(pre|post)$/.exec(config.reader.hookName ?? '(none)')
    assert.ok(m, `${name}: hook ${config.reader.hookName}`)
    assert.equal(index, Number(m[1]) + (m[2] === 'post' ? 1 : 0), `${name}: output index matches the hook`)
    if (config.sae.hookName) assert.equal(config.sae.hookName, config.reader.hookName)
  }
})
