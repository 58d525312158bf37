/** @module Tests for the local-disk ObjectStore: the shared contract plus what only a filesystem can get wrong. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FsObjectStore } from './fs-store.ts'
import { objectStoreContract } from './object-store.contract.ts'

const base = await mkdtemp(path.join(tmpdir(), 'lb-fs-store-'))
after(() => rm(base, { recursive: true, force: true }))
let n = 0

objectStoreContract('FsObjectStore', { make: async () => new FsObjectStore(path.join(base, `s${n++}`)) })

test('FsObjectStore: nothing is written outside the root, temp files never show, emptied folders are pruned', async () => {
  const root = path.join(base, 'escape')
  const store = new FsObjectStore(root)
  await assert.rejects(store.put('../outside', 'x'))
  assert.deepEqual((await readdir(base)).includes('outside'), false)
  await store.put('t/datasets/d/a.bin', 'a')
  // A crashed writer's leftover temp file stays invisible to list().
  await writeFile(path.join(root, 't/datasets/d/b.bin.lbtmp-1-abc'), 'partial')
  assert.deepEqual(
    (await store.list('t/')).map(o => o.key),
    ['t/datasets/d/a.bin']
  )
  await assert.rejects(store.get('t/datasets/d/b.bin.lbtmp-1-abc'), /invalid object key/)
  await rm(path.join(root, 't/datasets/d/b.bin.lbtmp-1-abc'))
  await store.delete('t/datasets/d/a.bin')
  assert.deepEqual(await readdir(root), [])
})

test('FsObjectStore: a reader never sees a partial object while a put overwrites it', async () => {
  const store = new FsObjectStore(path.join(base, 'atomic'))
  const a = new Uint8Array(2 << 20).fill(1)
  const b = new Uint8Array(3 << 20).fill(2)
  await store.put('x', a)
  let writes = 0
  const writer = (async () => {
    for (; writes < 12; writes++) await store.put('x', writes % 2 ? a : b)
  })()
  while (writes < 12) {
    const got = (await store.get('x'))!
    const ok =
      (got.length === a.length && got.every(v => v === 1)) || (got.length === b.length && got.every(v => v === 2))
    assert.ok(ok, `torn read of ${got.length} bytes`)
  }
  await writer
})
