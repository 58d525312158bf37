/** @module The behaviour every ObjectStore must have, as a test suite run against each implementation. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NotFoundError, PreconditionFailedError, type ObjectStore } from './object-store.ts'

export interface ContractOptions {
  /** A fresh, empty store for each test. */
  make: () => Promise<ObjectStore>
  /** How many keys the listing test writes: past 1000 exercises S3 pagination. */
  listKeys?: number
}

const text = new TextDecoder()

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s >>> 24
  }
  return out
}

export function objectStoreContract(name: string, options: ContractOptions): void {
  const { make, listKeys = 50 } = options

  test(`${name}: put/get/head round trip, strings as UTF-8, overwrite`, async () => {
    const store = await make()
    await store.put('a/b/c.json', '{"x":"é"}')
    assert.equal(text.decode((await store.get('a/b/c.json'))!), '{"x":"é"}')
    assert.equal(await store.head('a/b/c.json'), 10)
    await store.put('a/b/c.json', new Uint8Array([1, 2, 3]))
    assert.deepEqual([...(await store.get('a/b/c.json'))!], [1, 2, 3])
    await store.put('empty', new Uint8Array(0))
    assert.equal((await store.get('empty'))!.length, 0)
    assert.equal(await store.head('empty'), 0)
  })

  test(`${name}: missing keys`, async () => {
    const store = await make()
    assert.equal(await store.get('nope/x'), null)
    assert.equal(await store.head('nope/x'), null)
    await assert.rejects(store.getRange('nope/x', 0, 4), NotFoundError)
    await assert.rejects(store.getRange('nope/x', 0, 0), NotFoundError)
    await store.delete('nope/x') // not an error
    assert.deepEqual(await store.list('nope/'), [])
  })

  test(`${name}: byte ranges are [start, end), clamped at the end of the object`, async () => {
    const store = await make()
    const bytes = pseudoRandomBytes(1000, 7)
    await store.put('r.bin', bytes)
    assert.deepEqual(await store.getRange('r.bin', 0, 1000), bytes)
    assert.deepEqual(await store.getRange('r.bin', 10, 20), bytes.subarray(10, 20))
    assert.deepEqual(await store.getRange('r.bin', 999, 1000), bytes.subarray(999))
    assert.deepEqual(await store.getRange('r.bin', 990, 5000), bytes.subarray(990))
    assert.equal((await store.getRange('r.bin', 5, 5)).length, 0)
    assert.equal((await store.getRange('r.bin', 1000, 1010)).length, 0)
    await assert.rejects(store.getRange('r.bin', 5, 4), RangeError)
  })

  test(`${name}: create-only put fails when the key exists, and exactly one concurrent creator wins`, async () => {
    const store = await make()
    await store.put('once', 'first', { ifNoneMatch: true })
    await assert.rejects(store.put('once', 'second', { ifNoneMatch: true }), PreconditionFailedError)
    assert.equal(text.decode((await store.get('once'))!), 'first')
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.put('race/key', `writer ${i}`, { ifNoneMatch: true }))
    )
    const won = results.filter(r => r.status === 'fulfilled')
    assert.equal(won.length, 1)
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof PreconditionFailedError)
    assert.match(text.decode((await store.get('race/key'))!), /^writer \d$/)
    await store.put('once', 'third') // an unconditional put still overwrites
    assert.equal(text.decode((await store.get('once'))!), 'third')
  })

  test(`${name}: list is recursive, prefix-filtered, sorted, with sizes (${listKeys} keys)`, async () => {
    const store = await make()
    const keys: string[] = []
    for (let i = 0; i < listKeys; i++) keys.push(`t/datasets/d${i % 7}/part-${String(i).padStart(5, '0')}.bin`)
    keys.push('t/datasets/d1/deep/er/still.bin', 't/datasetsX/other.bin', 'u/elsewhere.bin')
    // Written out of order (a fixed permutation), so sorting is the store's work, not the writer's.
    const shuffled = keys
      .map((k, i) => ({ k, at: (i * 7919) % keys.length }))
      .sort((a, b) => a.at - b.at)
      .map(x => x.k)
    for (let i = 0; i < shuffled.length; i += 50) {
      await Promise.all(shuffled.slice(i, i + 50).map(k => store.put(k, k)))
    }
    const all = await store.list('t/datasets/')
    const expected = keys.filter(k => k.startsWith('t/datasets/')).sort()
    assert.deepEqual(
      all.map(o => o.key),
      expected
    )
    for (const o of all) assert.equal(o.size, o.key.length)
    // A prefix that ends mid-segment matches by string prefix, as S3 does.
    assert.deepEqual(
      (await store.list('t/datasets')).map(o => o.key),
      [...expected, 't/datasetsX/other.bin']
    )
    assert.deepEqual(
      (await store.list('t/datasets/d1/deep')).map(o => o.key),
      ['t/datasets/d1/deep/er/still.bin']
    )
    assert.equal((await store.list('')).length, keys.length)
  })

  test(`${name}: delete removes the object and only it`, async () => {
    const store = await make()
    await store.put('p/q/one', '1')
    await store.put('p/q/two', '2')
    await store.delete('p/q/one')
    assert.equal(await store.get('p/q/one'), null)
    assert.deepEqual(
      (await store.list('p/')).map(o => o.key),
      ['p/q/two']
    )
    await store.delete('p/q/two')
    assert.deepEqual(await store.list('p/'), [])
    await store.put('p/q/one', 'back') // the folder can be used again after being emptied
    assert.equal(text.decode((await store.get('p/q/one'))!), 'back')
  })

  test(`${name}: binary safety (all 256 byte values) and a multi-megabyte object`, async () => {
    const store = await make()
    const all = new Uint8Array(512)
    for (let i = 0; i < 512; i++) all[i] = i & 255
    await store.put('bin/all', all)
    assert.deepEqual(await store.get('bin/all'), all)
    assert.deepEqual(await store.getRange('bin/all', 250, 262), all.subarray(250, 262))
    const big = pseudoRandomBytes(6 * 1024 * 1024 + 13, 42)
    await store.put('bin/big', big)
    assert.equal(await store.head('bin/big'), big.length)
    assert.ok(Buffer.from((await store.get('bin/big'))!).equals(Buffer.from(big)))
    const mid = 3 * 1024 * 1024 + 5
    assert.ok(
      Buffer.from(await store.getRange('bin/big', mid, mid + 70000)).equals(Buffer.from(big.subarray(mid, mid + 70000)))
    )
  })

  test(`${name}: keys that could escape or are malformed are refused`, async () => {
    const store = await make()
    for (const bad of ['', '/abs', '../up', 'a/../../b', 'a//b', 'a/./b', 'a/', 'a\\b', 'nul\u0000']) {
      await assert.rejects(store.put(bad, 'x'), /invalid object key/, `put ${JSON.stringify(bad)}`)
      await assert.rejects(store.get(bad), /invalid object key/, `get ${JSON.stringify(bad)}`)
    }
    await assert.rejects(store.list('../'), /invalid object key/)
  })
}
