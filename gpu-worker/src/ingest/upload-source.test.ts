/** @module Tests of upload:// sources in the worker: read from the dataset's tenant's uploads, format from the uploaded file's name, no other tenant's. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { uploadKeys } from '@latentbase/shared/store/uploads'
import { readSourceDocuments } from './records.ts'
import { SourceError } from './open-source.ts'

async function putUpload(
  objects: MemoryObjectStore,
  tenant: string,
  id: string,
  filename: string,
  bytes: Uint8Array | string
) {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
  await objects.put(uploadKeys.data(tenant, id), data)
  await objects.put(
    uploadKeys.meta(tenant, id),
    JSON.stringify({
      id,
      url: `upload://${id}`,
      bytes: data.length,
      filename,
      contentType: 'text/csv',
      createdAt: new Date(0).toISOString()
    })
  )
}

const ID = 'up_abcdefghijkmnpqrstuv'

test("an upload:// source is read from the tenant's uploads, its format from the file name (here gzipped CSV)", async () => {
  const objects = new MemoryObjectStore()
  await putUpload(objects, 'acme', ID, 'reviews.csv.gz', gzipSync('id,body,stars\nr1,"great, really",5\nr2,bad,1\n'))
  const docs = []
  for await (const d of readSourceDocuments(
    { url: `upload://${ID}`, textField: 'body', idField: 'id', metadataFields: ['stars'] },
    { allowLocal: false, uploads: { objects, tenant: 'acme' } }
  ))
    docs.push(d)
  assert.deepEqual(
    docs.map(d => ('skip' in d ? d : [d.id, d.text, d.metadata])),
    [
      ['r1', 'great, really', { stars: '5' }],
      ['r2', 'bad', { stars: '1' }]
    ]
  )
})

test("another tenant's upload is not found, with a reason a user can act on", async () => {
  const objects = new MemoryObjectStore()
  await putUpload(objects, 'acme', ID, 'a.jsonl', '{"text":"x"}\n')
  const read = async () => {
    for await (const _ of readSourceDocuments(
      { url: `upload://${ID}` },
      { allowLocal: true, uploads: { objects, tenant: 'globex' } }
    )) {
      /* drain */
    }
  }
  await assert.rejects(read, (err: SourceError) => {
    assert.ok(err instanceof SourceError)
    assert.match(err.message, /not found for this tenant/)
    return true
  })
})
