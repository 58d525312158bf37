"""The client against a real local server (started by clients/python/python-client.test.ts with two encoded datasets)."""
import json
import os
import unittest

import pandas as pd

from latentbase import (AppendFailedError, Client, DatasetFailedError, LatentbaseError, DiffResult, Document,
                        DocumentActivations, Facets, LatentIntervals, LatentPage,
                        SearchResult)

URL = os.environ.get("LATENTBASE_URL")
FIXTURE = json.loads(os.environ.get("LATENTBASE_TEST_FIXTURE", "{}"))


def setUpModule():
    if not URL or not FIXTURE:
        raise RuntimeError("run through `node --import tsx --test clients/python/python-client.test.ts`, which starts the server "
                           "and sets LATENTBASE_URL and LATENTBASE_TEST_FIXTURE")


class ClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lb = Client(URL)
        cls.spam, cls.ham = FIXTURE["spam"], FIXTURE["ham"]
        cls.spam_docs = FIXTURE["documents"]["spam"]

    def test_encoders_and_datasets_are_listed_as_dataclasses(self):
        encoders = self.lb.encoders.list()
        demo = next(e for e in encoders if e.id == "demo")
        self.assertGreater(demo.d_sae, 0)
        self.assertTrue(demo.hook_name)
        ids = [d.id for d in self.lb.datasets.list()]
        self.assertIn(self.spam, ids)
        self.assertIn(self.ham, ids)
        spam = self.lb.datasets.get(self.spam)
        self.assertEqual(spam.status, "ready")
        self.assertEqual(spam.stats["documents"], len(self.spam_docs))
        self.assertEqual(spam.fraction, 1.0)

    def test_create_wait_with_progress_then_delete(self):
        created = self.lb.datasets.create(documents=[{"id": f"d{i}", "text": f"note number {i} about the garden"} for i in range(4)], name="py")
        self.assertEqual(created.status, "queued")
        self.assertEqual(created.name, "py")
        seen = []
        ready = self.lb.datasets.wait_until_ready(created.id, timeout=300, interval=0.05, on_progress=lambda d: seen.append(d.status))
        self.assertEqual(ready.status, "ready")
        self.assertEqual(seen[-1], "ready")
        self.assertEqual(ready.stats["documents"], 4)
        self.lb.datasets.delete(created.id)
        with self.assertRaises(LatentbaseError) as caught:
            self.lb.datasets.get(created.id)
        self.assertEqual(caught.exception.status, 404)
        self.assertEqual(caught.exception.code, "dataset-not-found")
        self.assertIn(created.id, caught.exception.detail)

    def test_append_a_version_read_it_pinned_watch_and_a_failed_batch(self):
        created = self.lb.datasets.create(documents=[{"id": f"g{i}", "text": f"a note about the garden, number {i}"} for i in range(4)])
        ready = self.lb.datasets.wait_until_ready(created.id, timeout=300, interval=0.05)
        self.assertEqual((ready.version, [v["documents"]["count"] for v in ready.versions]), (1, [4]))
        pending = self.lb.datasets.append(created.id, documents=[{"text": "FREE PRIZE!!! click here now"}, {"text": "win $$$ now!!!"}])
        self.assertEqual(pending.append["version"], 2)
        v2 = self.lb.datasets.wait_for_version(created.id, 2, timeout=300, interval=0.05)
        self.assertEqual([(v["version"], v["documents"]["start"], v["documents"]["count"]) for v in v2.versions], [(1, 0, 4), (2, 4, 2)])
        self.assertEqual(self.lb.documents.get(created.id, 4).text, "FREE PRIZE!!! click here now")
        pinned = self.lb.diff(self.spam, f"{created.id}@1", limit=1)
        self.assertEqual((pinned.b[0].id, pinned.b[0].documents), (f"{created.id}@1", 4))
        self.assertEqual(self.lb.diff(self.spam, created.id, limit=1).b[0].documents, 6)
        watched = self.lb.datasets.update(created.id, watch={"against": "previous", "minDifference": 0.2})
        self.assertEqual(watched.watch, {"against": "previous", "minDifference": 0.2, "maxQValue": 0.05})
        self.assertIsNone(self.lb.datasets.update(created.id, watch=None).watch)
        failing = self.lb.datasets.append(created.id, documents=[{"text": ""}])
        with self.assertRaises(AppendFailedError) as caught:
            self.lb.datasets.wait_for_version(created.id, failing.append["version"], timeout=300, interval=0.05)
        self.assertEqual(caught.exception.dataset.append["error"]["code"], "no-documents")
        self.lb.datasets.delete(created.id)

    def test_a_local_file_is_uploaded_and_encoded(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "notes.jsonl")
            with open(path, "w") as f:
                f.writelines(json.dumps({"id": f"u{i}", "text": f"uploaded note {i} about the harbour"}) + "\n" for i in range(5))
            upload = self.lb.uploads.create(path)
            self.assertTrue(upload.url.startswith("upload://up_"), upload.url)
            self.assertEqual(upload.filename, "notes.jsonl")
            self.assertEqual(upload.bytes, os.path.getsize(path))
            created = self.lb.datasets.create_from_file(path, name="uploaded")
            sampled = self.lb.datasets.create(source=upload.url, max_documents=3, sample_seed=4)
        ready = self.lb.datasets.wait_until_ready(created.id, timeout=300, interval=0.05)
        self.assertEqual(ready.stats["documents"], 5)
        self.assertTrue(ready.raw["source"]["url"].startswith("upload://"))
        self.lb.datasets.delete(created.id)
        # Keyword source options are sent in the API's spelling: a seeded sample of 3 of the 5 notes.
        sample = self.lb.datasets.wait_until_ready(sampled.id, timeout=300, interval=0.05)
        self.assertEqual(sample.stats["documents"], 3)
        self.assertEqual(sample.stats["skipped"], {"not-sampled": 2})

    def test_a_failed_encoding_raises_with_its_reason(self):
        created = self.lb.datasets.create(source="file:///nonexistent/latentbase-python-test.jsonl")
        with self.assertRaises(DatasetFailedError) as caught:
            self.lb.datasets.wait_until_ready(created.id, timeout=300, interval=0.05)
        self.assertEqual(caught.exception.dataset.status, "failed")
        self.assertTrue(caught.exception.dataset.error["message"])

    def test_bad_requests_raise_the_problem_detail(self):
        with self.assertRaises(LatentbaseError) as caught:
            self.lb.datasets.create(documents=[{"text": "x"}], encoder="nope")
        self.assertEqual(caught.exception.status, 422)
        self.assertEqual(caught.exception.code, "unknown-encoder")
        self.assertIn("available: demo", str(caught.exception))
        with self.assertRaises(LatentbaseError) as caught:
            self.lb.diff(self.spam, self.ham, limit=0)
        self.assertEqual(caught.exception.status, 400)
        self.assertEqual(caught.exception.errors[0]["path"], "limit")

    def test_documents_with_latents_and_to_pandas(self):
        doc = self.lb.documents.get(self.spam, 3)
        self.assertIsInstance(doc, Document)
        self.assertEqual(doc.id, self.spam_docs[3]["id"])
        self.assertEqual(doc.text, self.spam_docs[3]["text"])
        self.assertEqual(doc.metadata, {"group": "spam-1"})
        values = [l.value for l in doc.latents]
        self.assertGreater(len(values), 5)
        self.assertEqual(values, sorted(values, reverse=True))
        frame = doc.to_pandas()
        self.assertEqual(list(frame.columns), ["latent", "value", "position", "label", "label_source", "peak_token", "frequency"])
        self.assertTrue(all(0 < f <= 1 for f in frame.frequency))
        self.assertEqual(len(frame), len(doc.latents))
        self.assertTrue(all(l.label_source for l in doc.latents if l.label))
        described = self.lb.documents.get(self.spam, 3, peaks="all")
        self.assertTrue(any(l.peak for l in described.latents))
        self.assertEqual(list(described.to_pandas().peak_token), [l.peak["token"] if l.peak else None for l in described.latents])
        self.assertTrue(all(l.peak is None for l in self.lb.documents.get(self.spam, 3, peaks="none").latents))
        many = self.lb.documents.get_many(self.spam, [0, 1, 2]).to_pandas()
        self.assertEqual(sorted(many["row"].unique().tolist()), [0, 1, 2])
        self.assertEqual(many[many.row == 0]["id"].iloc[0], self.spam_docs[0]["id"])

    def test_where_latents_fire_in_a_document_token_by_token(self):
        doc = self.lb.documents.get(self.spam, 3)
        asked = [l.latent for l in doc.latents[:3]]
        shown = self.lb.documents.activations(self.spam, 3, asked)
        self.assertIsInstance(shown, DocumentActivations)
        self.assertEqual(len(shown.tokens), doc.token_count)
        self.assertEqual([l.latent for l in shown.latents], asked)
        for l, stored in zip(shown.latents, doc.latents[:3]):
            self.assertEqual(l.position, stored.position)
            self.assertAlmostEqual(l.max, stored.value, delta=1e-3 * max(1, stored.value))
            self.assertEqual(len(l.activations), len(shown.tokens))
        frame = shown.to_pandas()
        self.assertEqual(list(frame.columns), ["token_index", "token", "pooled", *asked])
        self.assertEqual(int(frame[asked[0]].idxmax()), doc.latents[0].position)
        with self.assertRaises(LatentbaseError) as err:
            self.lb.documents.activations(self.spam, 3, [10**6])
        self.assertEqual(err.exception.status, 400)
        text = self.lb.documents.activations_of_text(self.spam, self.spam_docs[3]["text"], top=5)
        self.assertEqual(text.present, len(doc.latents))
        self.assertEqual({l.latent for l in text.latents}, {l.latent for l in doc.latents[:5]})
        table = text.latents_to_pandas()
        self.assertEqual(list(table.columns), ["latent", "label", "max", "position", "token", "frequency", "peak_token"])
        self.assertTrue(all(0 < f <= 1 for f in table.frequency))
        self.assertEqual(list(table.token), [text.tokens[l.position] for l in text.latents])
        distinct = self.lb.documents.activations_of_text(self.spam, self.spam_docs[3]["text"], top=5, order="distinctive")
        self.assertEqual(len(distinct.latents), 5)
        self.assertLessEqual(sum(l.frequency == 1 for l in distinct.latents), sum(l.frequency == 1 for l in text.latents))
        chat = self.lb.documents.activations_of_text(self.spam, [{"role": "user", "content": "hello old friend"},
                                                                 {"role": "assistant", "content": "Click here to win"}])
        pooled = "".join(t for t, p in zip(chat.tokens, chat.pooled) if p)
        self.assertIn("Click", pooled)
        self.assertNotIn("friend", pooled)
        asked = self.lb.documents.activations_of_text(self.spam, "free money", latents=[4, 2])
        self.assertEqual([l.latent for l in asked.latents], [4, 2])
        self.assertEqual(list(asked.to_pandas().columns), ["token_index", "token", "pooled", 4, 2])

    def test_facets_list_metadata_values_whose_slices_a_diff_takes(self):
        facets = self.lb.datasets.facets(self.spam)
        self.assertIsInstance(facets, Facets)
        self.assertEqual((facets.dataset, facets.documents, facets.stored), (self.spam, len(self.spam_docs), True))
        group = next(f for f in facets.fields if f.field == "metadata.group")
        self.assertEqual(sum(v.documents for v in group.values) + group.missing, len(self.spam_docs))
        top = group.values[0]
        self.assertEqual(top.where, f'metadata.group = "{top.value}"')
        sliced = self.lb.diff(self.spam, self.ham, a_where=top.where, limit=1)
        self.assertEqual((sliced.a.documents, sliced.a.mean_tokens), (top.documents, top.mean_tokens))
        frame = facets.to_pandas()
        self.assertEqual(list(frame.columns), ["field", "value", "documents", "mean_tokens", "where"])
        self.assertEqual(int(frame[frame.field == "metadata.group"].documents.sum()), sum(v.documents for v in group.values))

    def test_diff_latent_page_and_their_tables_agree_with_the_documents(self):
        diff = self.lb.diff(self.spam, self.ham, limit=10)
        self.assertIsInstance(diff, DiffResult)
        self.assertEqual(diff.a.documents, len(self.spam_docs))
        self.assertEqual(diff.b[0].id, self.ham)
        table = diff.to_pandas()
        self.assertEqual(len(table), 10)
        self.assertTrue(table["difference"].is_monotonic_decreasing)
        self.assertTrue(((table.ci_low <= table.difference) & (table.difference <= table.ci_high)).all())
        top = diff.latents[0]
        present = sum(1 for row in range(len(self.spam_docs)) if any(l.latent == top.latent for l in self.lb.documents.get(self.spam, row).latents))
        self.assertEqual(present, top.count_a)
        page = self.lb.latents.get(self.spam, top.latent, examples=3)
        self.assertIsInstance(page, LatentPage)
        self.assertEqual(page.documents, top.count_a)
        self.assertAlmostEqual(page.frequency, top.frequency_a)
        examples = page.to_pandas()
        self.assertEqual(len(examples), min(3, top.count_a))
        self.assertTrue(all(len(t) == len(a) for t, a in zip(examples.tokens, examples.activations)))
        spread = self.lb.latents.intervals(self.spam, top.latent, intervals=3, per_interval=2, seed=4)
        self.assertIsInstance(spread, LatentIntervals)
        self.assertEqual(spread.documents, top.count_a)
        self.assertEqual(sum(iv.documents for iv in spread.intervals), top.count_a)
        self.assertTrue(spread.windows, "the local server re-encodes the windows")
        self.assertEqual(spread.intervals[0].to, spread.max)
        for iv in spread.intervals:
            for e in iv.examples:
                self.assertTrue(iv.from_ < e.value <= iv.to + 1e-6)
                self.assertEqual(len(e.tokens), len(e.activations))
        table = spread.to_pandas()
        self.assertEqual(len(table), sum(len(iv.examples) for iv in spread.intervals))
        self.assertEqual(list(table.columns[:3]), ["from", "to", "interval_documents"])
        several = self.lb.diff(self.spam, [self.ham, self.ham], limit=3)
        self.assertEqual(len(several.b), 2)
        described = self.lb.diff(self.spam, self.ham, limit=3, peaks="all")
        self.assertTrue(any(l.peak for l in described.latents))
        self.assertTrue(all(l.peak["dataset"] in (self.spam, self.ham) and l.peak["token"] for l in described.latents if l.peak))
        self.assertEqual(list(described.to_pandas().peak_token), [l.peak["token"] if l.peak else None for l in described.latents])
        self.assertTrue(all(l.peak is None for l in self.lb.diff(self.spam, self.ham, limit=3, peaks="none").latents))

    def test_search_correlations_and_clusters(self):
        word = "click"
        found = self.lb.search(self.spam, word, method="bm25", limit=5)
        self.assertIsInstance(found, SearchResult)
        hits = found.to_pandas()
        self.assertEqual(list(hits.columns), ["row", "id", "score", "snippet", "top_latent", "top_latent_share"])
        self.assertTrue(hits.top_latent.isna().all(), "bm25 reads the text only")
        self.assertGreater(len(hits), 0)
        for row in hits.itertuples():
            self.assertIn(word, self.spam_docs[row.row]["text"].lower())
        by_latent = self.lb.search(self.spam, latents=[self.lb.diff(self.spam, self.ham, limit=1).latents[0].latent])
        self.assertEqual(by_latent.method, "sae")
        self.assertGreater(by_latent.matched, 0)
        top = by_latent.latents[0].latent
        self.assertTrue(all(h.latents == [{"latent": top, "value": h.latents[0]["value"], "share": 1}] for h in by_latent.results))
        self.assertEqual(set(by_latent.to_pandas().top_latent), {top})

        corr = self.lb.correlations(self.spam, min_npmi=0.0, min_count=2, max_frequency=1.0, limit=20)
        self.assertEqual(corr.documents, len(self.spam_docs))
        npmi = corr.to_pandas()["npmi"].tolist()
        self.assertEqual(npmi, sorted(npmi, reverse=True))

        latents = self.lb.latents.list(self.spam, limit=3)
        self.assertEqual(len(latents.latents), 3)
        self.assertGreaterEqual(latents.latents[0].documents, latents.latents[2].documents)
        self.assertEqual(list(latents.to_pandas()["latent"]), [l.latent for l in latents.latents])
        self.assertEqual(self.lb.latents.list(self.spam, q="click here", limit=2).q, "click here")
        like = self.lb.documents.similar(self.spam, 0, limit=3)
        self.assertEqual(like.row, 0)
        self.assertTrue(0 < len(like.results) <= 3)
        self.assertNotIn(0, [r.row for r in like.results])
        self.assertTrue(all(r.shared and 0 < r.shared[0].share <= 1 for r in like.results))
        self.assertEqual(list(like.to_pandas()["row"]), [r.row for r in like.results])
        self.assertEqual(like.in_dataset, self.spam)
        like_text = self.lb.documents.like(self.spam, self.spam_docs[0]["text"], limit=3)
        self.assertEqual(like_text.results[0].row, 0, "a document's own text finds it first")
        self.assertEqual(like_text.latents, like.latents)
        self.assertEqual(list(like_text.to_pandas()["row"]), [r.row for r in like_text.results])
        across = self.lb.documents.similar(self.spam, 0, limit=3, in_dataset=self.ham)
        self.assertEqual(across.in_dataset, self.ham)
        self.assertEqual(across.candidates, len(FIXTURE["documents"]["ham"]))
        rarest = self.lb.latents.list(self.spam, sort="rare", limit=3)
        self.assertEqual(rarest.sort, "rare")
        self.assertLessEqual(rarest.latents[0].documents, latents.latents[2].documents)
        rare = latents.latents[2]
        sliced = self.lb.latents.list(self.spam, where=f"latent {rare.latent} > 0", limit=500)
        self.assertEqual(sliced.where, f"latent {rare.latent} > 0")
        self.assertEqual(sliced.documents, rare.documents)
        self.assertEqual({l.latent: l.frequency for l in sliced.latents}[rare.latent], 1.0)
        tied = self.lb.latents.list(self.spam, where=f"latent {rare.latent} > 0", sort="npmi", limit=5)
        self.assertEqual(tied.latents[0].npmi, 1.0)
        self.assertIn("npmi", tied.to_pandas().columns)
        clusters = self.lb.clusters(self.spam, 2, seed=1)
        self.assertEqual(len(clusters.assignments), len(self.spam_docs))
        self.assertEqual(set(clusters.to_pandas()["cluster"]) <= {0, 1}, True)
        self.assertEqual(clusters.similarity, "cosine")
        self.assertEqual(self.lb.clusters(self.spam, 2, seed=1, similarity="jaccard").similarity, "jaccard")

    def test_slices_as_text_or_dict_on_diff_latent_page_search_correlations_and_clusters(self):
        top = self.lb.diff(self.spam, self.ham, limit=1).latents[0]
        present, n = f"latent {top.latent}", len(self.spam_docs)
        # One dataset, two slices: the latent's documents against the others; the dict (JSON form) says the same.
        halves = self.lb.diff(self.spam, self.spam, a_where=present, b_where=f"not {present}")
        self.assertEqual((halves.a.documents, halves.b[0].documents), (top.count_a, n - top.count_a))
        self.assertEqual((halves.a.where, halves.b[0].where), (present, f"not {present}"))
        as_dict = self.lb.diff(self.spam, self.spam, a_where={"latent": top.latent}, b_where=[{"not": {"latent": top.latent}}])
        self.assertEqual(as_dict.to_pandas().to_dict("records"), halves.to_pandas().to_dict("records"))
        # One slice per b; None is the whole dataset.
        per_b = self.lb.diff(self.spam, [self.ham, self.ham], b_where=[present, None], limit=1)
        self.assertEqual([b.where for b in per_b.b], [present, None])
        self.assertEqual(per_b.b[1].documents, n)
        every_b = self.lb.diff(self.spam, [self.ham, self.spam], b_where=present, limit=1)
        self.assertEqual([b.where for b in every_b.b], [present, present])
        self.assertEqual(every_b.b[1].documents, top.count_a)

        page = self.lb.latents.get(self.spam, top.latent, where=present)
        self.assertEqual((page.documents, page.frequency, page.where), (top.count_a, 1.0, present))
        strongest = page.slice_strongest
        self.assertEqual(len(strongest), min(5, top.count_a))
        self.assertEqual([s["value"] for s in strongest], sorted((s["value"] for s in strongest), reverse=True))
        self.assertIsNone(self.lb.latents.get(self.spam, top.latent).slice_strongest)
        self.assertEqual(self.lb.latents.get(self.spam, top.latent, where={"not": {"latent": top.latent}}).documents, 0)

        clusters = self.lb.clusters(self.spam, 2, seed=1, where=present)
        self.assertEqual((clusters.documents, clusters.where, len(clusters.rows)), (top.count_a, present, top.count_a))
        rows = set(clusters.to_pandas()["row"])
        self.assertEqual(rows, set(clusters.rows))
        inside = self.lb.search(self.spam, latents=[top.latent], where={"latent": top.latent})
        self.assertEqual(inside.where, present)
        self.assertGreater(len(inside.results), 0)
        self.assertTrue(all(h.row in rows for h in inside.results))
        outside = self.lb.search(self.spam, latents=[top.latent], where=f"not {present}")
        self.assertTrue(all(h.row not in rows for h in outside.results))

        corr = self.lb.correlations(self.spam, where=present, min_npmi=0.0, min_count=2, max_frequency=1.0)
        self.assertEqual((corr.documents, corr.where), (top.count_a, present))

    def test_a_bad_slice_raises_the_servers_reason(self):
        with self.assertRaises(LatentbaseError) as caught:
            self.lb.diff(self.spam, self.ham, a_where='metadata.group ~ "x"')
        self.assertEqual(caught.exception.status, 400)
        self.assertIn('bad operator "~"', str(caught.exception))
        for call in (lambda: self.lb.search(self.spam, "click", where={"field": "colour", "eq": "red"}),
                     lambda: self.lb.correlations(self.spam, where="colour = 1"),
                     lambda: self.lb.clusters(self.spam, 2, where={"field": "colour", "eq": "red"}),
                     lambda: self.lb.latents.get(self.spam, 3, where="colour exists")):
            with self.assertRaises(LatentbaseError) as caught:
                call()
            self.assertEqual(caught.exception.status, 400)
            self.assertIn('"colour"', str(caught.exception))
        with self.assertRaises(TypeError):
            self.lb.search(self.spam, "click", where=12)
        # Hypotheses and verification take a_where / b_where in the body, checked before the LLM is needed: a valid
        # slice gets as far as the missing LLM (503), a bad one is refused with its reason (400).
        for call in (lambda w: self.lb.hypotheses.create(self.spam, self.spam, a_where="latent 1", b_where=w),
                     lambda w: self.lb.hypotheses.verify(self.spam, self.spam, ["x"], a_where={"latent": 1}, b_where=w)):
            with self.assertRaises(LatentbaseError) as caught:
                call("not latent 1")
            self.assertEqual(caught.exception.code, "llm-not-configured")
            with self.assertRaises(LatentbaseError) as caught:
                call("tokens ~ 3")
            self.assertEqual(caught.exception.status, 400)
            self.assertIn('bWhere', str(caught.exception))

    def test_a_clustering_job_is_waited_on_and_read_back(self):
        accepted = self.lb.submit_clusters(self.spam, 2, seed=1)
        progress = []
        job = self.lb.jobs.wait(accepted.id, timeout=300, on_progress=lambda j: progress.append(j.status))
        self.assertEqual(job.status, "ready")
        self.assertEqual(progress[-1], "ready")
        result = self.lb.jobs.result_all(accepted.id, page_size=5)
        direct = self.lb.clusters(self.spam, 2, seed=1)
        self.assertEqual(result["assignments"], direct.assignments)

    def test_llm_steps_without_an_llm_say_so(self):
        with self.assertRaises(LatentbaseError) as caught:
            self.lb.hypotheses.create(self.spam, self.ham)
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(caught.exception.code, "llm-not-configured")


if __name__ == "__main__":
    unittest.main()
