"""Webhook verification against signatures made by the server's TypeScript signer (passed in by the test harness) and by hand."""
import json
import os
import time
import unittest

from latentbase import WebhookVerificationError, sign_webhook, verify_webhook


class WebhookTests(unittest.TestCase):
    def test_a_signature_made_by_the_server_verifies(self):
        fixture = json.loads(os.environ["LATENTBASE_TEST_WEBHOOK"])
        headers = {"Webhook-Id": fixture["id"], "Webhook-Timestamp": str(fixture["timestamp"]), "Webhook-Signature": fixture["signature"]}
        event = verify_webhook(fixture["secret"], headers, fixture["body"], now=fixture["timestamp"] + 10)
        self.assertEqual(event, json.loads(fixture["body"]))
        # The same bytes given as bytes verify too.
        self.assertEqual(verify_webhook(fixture["secret"], headers, fixture["body"].encode(), now=fixture["timestamp"]), event)
        # Our signer agrees with the server's, byte for byte.
        self.assertEqual(sign_webhook(fixture["secret"], fixture["id"], fixture["timestamp"], fixture["body"]), fixture["signature"])

    def test_tampering_stale_and_missing_headers_are_refused_with_a_reason(self):
        fixture = json.loads(os.environ["LATENTBASE_TEST_WEBHOOK"])
        secret, ts, body = fixture["secret"], fixture["timestamp"], fixture["body"]
        headers = {"webhook-id": fixture["id"], "webhook-timestamp": str(ts), "webhook-signature": fixture["signature"]}
        cases = [
            (dict(headers), body.replace('"', "'", 1), ts, "bad-signature"),
            (dict(headers), body, ts + 301, "timestamp-too-old"),
            (dict(headers), body, ts - 301, "timestamp-too-new"),
            ({k: v for k, v in headers.items() if k != "webhook-id"}, body, ts, "missing-header"),
            ({**headers, "webhook-timestamp": "12.5"}, body, ts, "invalid-timestamp"),
            ({**headers, "webhook-signature": "v2," + fixture["signature"][3:]}, body, ts, "bad-signature"),
        ]
        for h, b, now, reason in cases:
            with self.subTest(reason=reason):
                with self.assertRaises(WebhookVerificationError) as caught:
                    verify_webhook(secret, h, b, now=now)
                self.assertEqual(caught.exception.reason, reason)

    def test_a_rotated_secret_is_accepted_by_any_listed_signature(self):
        new_secret = "whsec_" + "A" * 43 + "="
        ts = int(time.time())
        body = '{"type":"dataset.ready"}'
        both = sign_webhook(new_secret, "msg_1", ts, body) + " " + sign_webhook("whsec_" + "B" * 43 + "=", "msg_1", ts, body)
        self.assertEqual(verify_webhook(new_secret, {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": both}, body),
                         {"type": "dataset.ready"})


if __name__ == "__main__":
    unittest.main()
