/** @module Tests for Standard Webhooks signing, checked both ways against the reference `standardwebhooks` package. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { generateWebhookSecret, signWebhook, verifyWebhook, WebhookVerificationError } from './sign.ts'

const body = JSON.stringify({ type: 'dataset.ready', data: { id: 'ds_1', note: 'ünïcode ✓' } })
const nowSeconds = () => Math.floor(Date.now() / 1000)

function reasonIs(reason: string) {
  return (err: unknown) => err instanceof WebhookVerificationError && err.reason === reason
}

describe('webhook signing', () => {
  it('generates whsec_ secrets of 32 random bytes, different every time', () => {
    const a = generateWebhookSecret()
    const b = generateWebhookSecret()
    assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/)
    assert.equal(Buffer.from(a.slice(6), 'base64').length, 32)
    assert.notEqual(a, b)
  })

  it('our signature verifies with standardwebhooks', async () => {
    const secret = generateWebhookSecret()
    const ts = nowSeconds()
    const signature = await signWebhook(secret, 'msg_1', ts, body)
    assert.match(signature, /^v1,[A-Za-z0-9+/]{43}=$/)
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': signature }
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body))
    // And it is exactly theirs.
    assert.equal(new Webhook(secret).sign('msg_1', new Date(ts * 1000), body), signature)
    // Another secret must not verify.
    assert.throws(() => new Webhook(generateWebhookSecret()).verify(body, headers))
  })

  it('their signature verifies with ours, from Headers or a plain object with any header case', async () => {
    const secret = generateWebhookSecret()
    const ts = nowSeconds()
    const signature = new Webhook(secret).sign('msg_2', new Date(ts * 1000), body)
    const plain = { 'Webhook-Id': 'msg_2', 'Webhook-Timestamp': String(ts), 'Webhook-Signature': signature }
    assert.deepEqual(await verifyWebhook(secret, plain, body), JSON.parse(body))
    assert.deepEqual(await verifyWebhook(secret, new Headers(plain), body), JSON.parse(body))
  })

  it('accepts any one valid signature among several (secret rotation)', async () => {
    const oldSecret = generateWebhookSecret()
    const newSecret = generateWebhookSecret()
    const ts = nowSeconds()
    const sigs = [await signWebhook(oldSecret, 'msg_3', ts, body), await signWebhook(newSecret, 'msg_3', ts, body)]
    const headers = {
      'webhook-id': 'msg_3',
      'webhook-timestamp': String(ts),
      'webhook-signature': `v2,abc ${sigs.join(' ')}`
    }
    assert.deepEqual(await verifyWebhook(newSecret, headers, body), JSON.parse(body))
    assert.deepEqual(await verifyWebhook(oldSecret, headers, body), JSON.parse(body))
  })

  it('refuses a tampered body, id or timestamp, and a wrong secret', async () => {
    const secret = generateWebhookSecret()
    const ts = nowSeconds()
    const signature = await signWebhook(secret, 'msg_4', ts, body)
    const headers = { 'webhook-id': 'msg_4', 'webhook-timestamp': String(ts), 'webhook-signature': signature }
    await assert.rejects(verifyWebhook(secret, headers, body.replace('ds_1', 'ds_2')), reasonIs('bad-signature'))
    await assert.rejects(verifyWebhook(secret, { ...headers, 'webhook-id': 'msg_5' }, body), reasonIs('bad-signature'))
    await assert.rejects(
      verifyWebhook(secret, { ...headers, 'webhook-timestamp': String(ts - 1) }, body),
      reasonIs('bad-signature')
    )
    await assert.rejects(verifyWebhook(generateWebhookSecret(), headers, body), reasonIs('bad-signature'))
    await assert.rejects(
      verifyWebhook(secret, { ...headers, 'webhook-signature': 'v1,!!notbase64' }, body),
      reasonIs('bad-signature')
    )
  })

  it('says which header is missing', async () => {
    const secret = generateWebhookSecret()
    await assert.rejects(
      verifyWebhook(secret, { 'webhook-id': 'x', 'webhook-timestamp': String(nowSeconds()) }, body),
      (err: unknown) => reasonIs('missing-header')(err) && /webhook-signature/.test((err as Error).message)
    )
  })

  it('enforces the timestamp tolerance both ways, and `now` moves the clock', async () => {
    const secret = generateWebhookSecret()
    const ts = 1_700_000_000
    const headers = {
      'webhook-id': 'msg_6',
      'webhook-timestamp': String(ts),
      'webhook-signature': await signWebhook(secret, 'msg_6', ts, body)
    }
    assert.ok(await verifyWebhook(secret, headers, body, { now: (ts + 299) * 1000 }))
    await assert.rejects(
      verifyWebhook(secret, headers, body, { now: (ts + 301) * 1000 }),
      reasonIs('timestamp-too-old')
    )
    await assert.rejects(
      verifyWebhook(secret, headers, body, { now: new Date((ts - 301) * 1000) }),
      reasonIs('timestamp-too-new')
    )
    assert.ok(await verifyWebhook(secret, headers, body, { now: (ts + 3000) * 1000, toleranceSeconds: 3600 }))
    await assert.rejects(
      verifyWebhook(secret, { ...headers, 'webhook-timestamp': '12abc' }, body),
      reasonIs('invalid-timestamp')
    )
  })

  it('a validly signed body that is not JSON is refused as such', async () => {
    const secret = generateWebhookSecret()
    const ts = nowSeconds()
    const headers = {
      'webhook-id': 'm',
      'webhook-timestamp': String(ts),
      'webhook-signature': await signWebhook(secret, 'm', ts, 'not json')
    }
    await assert.rejects(verifyWebhook(secret, headers, 'not json'), reasonIs('invalid-body'))
  })
})
