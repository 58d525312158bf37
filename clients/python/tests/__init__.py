"""Tests of the latentbase client; run by clients/python/python-client.test.ts, which starts a local server and sets LATENTBASE_URL, LATENTBASE_TEST_FIXTURE and LATENTBASE_TEST_WEBHOOK."""
