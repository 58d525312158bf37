"""Offline labels for the demo SAE's latents: words and short phrases by lift, with an example and a detection score.

For every token of held-out documents (never used to fit the SAE), its *window* is the words of the WINDOW tokens
before it and the word it is part of. For a latent, the windows of its strongest activations (up to MINE_PER_LATENT)
are compared with all windows: a term (word or two-word phrase) scores share_active * log(share_active /
share_all) (its contribution to the KL divergence), and the best LABEL_TERMS terms make the label, followed by the
strongest example whose window holds one of them (so that the example shows what the words say: the strongest
activation alone, in 43% of the latents, showed none of them). The score, computed on a second, disjoint set of held-out documents, is the offline analogue of
an LLM label's detection score: balanced accuracy of "the window contains one of the label's terms" at telling
windows where the latent fires from windows where it does not (0.5 = chance).

Usage: python3 mine_labels.py CORPUS_DIR BUILD_DIR SAE_DIR TOKENIZER_JSON OUT_LABELS_JSONL
"""
import json
import os
import re
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(__file__))
from reader_math import Reader, load_safetensors  # noqa: E402
from train_sae import held_out  # noqa: E402

WINDOW = 8
MINE_TOKENS = int(os.environ.get('MINE_TOKENS', 400_000))
SCORE_TOKENS = int(os.environ.get('SCORE_TOKENS', 200_000))
MINE_PER_LATENT = 300
SCORE_PER_CLASS = 200
LABEL_TERMS = 3
MAX_LABEL = 119
SOURCE = 'offline-lift'
SEED = 20251206
STOP = set(('a an and are as at be been but by for from had has have he her his i if in into is it its me my of on or our '
            'she so than that the their them then there these they this those to us was we were what when where which who '
            'will with would you your s t').split())


class Sae:
    def __init__(self, path):
        t, _ = load_safetensors(os.path.join(path, 'sae_weights.safetensors'))
        self.W_enc = t['W_enc'].astype(np.float32); self.b_enc = t['b_enc'].astype(np.float32)
        self.b_dec = t['b_dec'].astype(np.float32)
        self.k = json.load(open(os.path.join(path, 'cfg.json')))['k']

    def encode(self, x):
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        # A copy: a slice would keep the whole [T, d_sae] index array alive (64 KB per token).
        idx = np.argpartition(-pre, self.k, axis=1)[:, :self.k].copy()
        vals = np.maximum(np.take_along_axis(pre, idx, 1), 0)
        return idx, vals


def words_of(pieces):
    """Per token: the index of the word it belongs to (-1 for none) and the words' texts (lower case)."""
    owner = np.full(len(pieces), -1, dtype=np.int64)
    words = []
    cur = None
    for t, p in enumerate(pieces):
        starts_word = p.startswith('\u2581')
        text = p.replace('\u2581', '')
        if re.fullmatch(r'<0x[0-9A-F]{2}>', text):
            text = ''
        alnum = re.sub(r'[^\w]', '', text.lower())
        sym = re.sub(r'[\w\s]', '', text)
        if alnum and not sym and not starts_word and cur is not None and words[cur][1]:
            words[cur][0] += alnum
            owner[t] = cur
        elif alnum and not sym:
            words.append([alnum, True]); cur = len(words) - 1; owner[t] = cur
        elif sym and len(sym) <= 2 and sym in ('$', '@', '<', '>', '!', '#', '%', '&', '=', '!!', '//', '</'):
            words.append([sym, False]); cur = len(words) - 1; owner[t] = cur
        else:
            cur = None
    return owner, [w for w, _ in words]


def collect(reader, sae, ids, starts, docs, limit, pieces_of):
    """Runs reader + SAE over documents; returns per-token (doc, position) arrays, the latent codes, windows' term ids."""
    idx_all, val_all, term_rows, doc_pos, texts = [], [], [], [], []
    n = 0
    for doc in docs:
        tok = ids[starts[doc]:starts[doc + 1]]
        h = reader.hidden(tok)[1:]
        if len(h) == 0:
            continue
        i, v = sae.encode(h)
        idx_all.append(i); val_all.append(v)
        pieces = pieces_of(tok[1:])
        owner, words = words_of(pieces)
        # Window terms of each token: words owning tokens in [t - WINDOW, t] plus the word t belongs to, and bigrams.
        rows = []
        for t in range(len(tok) - 1):
            ws = [w for w in dict.fromkeys(owner[max(0, t - WINDOW):t + 1]) if w >= 0]
            terms = {words[w] for w in ws if words[w] not in STOP}
            terms.update(f'{words[a]} {words[b]}' for a, b in zip(ws, ws[1:]) if b == a + 1 and not (words[a] in STOP and words[b] in STOP))
            rows.append(terms)
        term_rows.extend(rows)
        doc_pos.extend((doc, t) for t in range(len(tok) - 1))
        texts.append((doc, pieces))
        n += len(h)
        if n >= limit:
            break
    return np.concatenate(idx_all), np.concatenate(val_all), term_rows, doc_pos, dict(texts)


def incidence(term_rows, vocab):
    indptr = [0]; indices = []
    for terms in term_rows:
        for t in terms:
            j = vocab.get(t)
            if j is None:
                j = vocab[t] = len(vocab)
            indices.append(j)
        indptr.append(len(indices))
    return indptr, indices


def example(pieces, t, room):
    left = ''.join(pieces[max(0, t - 12):t + 1]).replace('\u2581', ' ')
    right = ''.join(pieces[t + 1:t + 4]).replace('\u2581', ' ')
    left = re.sub(r'<0x0A>', ' ', left); right = re.sub(r'<0x0A>', ' ', right)
    left = re.sub(r'<0x[0-9A-F]{2}>', '', left); right = re.sub(r'<0x[0-9A-F]{2}>', '', right)
    text = re.sub(r'\s+', ' ', left).strip().replace('"', "'")
    after = re.sub(r'\s+', ' ', right).rstrip().replace('"', "'")
    if len(text) > room - len(after):
        text = text[len(text) - max(0, room - len(after)):]
    return f'...{text}{after}...'


def shown_example(M, top_rows, tids):
    """The strongest of a latent's top activations whose window holds one of its label terms (else the strongest)."""
    wanted = np.asarray(tids)
    for r in top_rows:
        if np.isin(M.indices[M.indptr[r]:M.indptr[r + 1]], wanted).any():
            return r
    return top_rows[0]


def main(corpus, build, sae_dir, tokenizer_json, out_path):
    t0 = time.time()
    ids = np.load(os.path.join(corpus, 'ids.npy')).astype(np.int64)
    starts = np.load(os.path.join(corpus, 'starts.npy'))
    cfg = json.load(open(os.path.join(build, 'reader.json')))
    reader = Reader(os.path.join(build, 'reader-weights.safetensors'), cfg['decay'], cfg['gain'])
    sae = Sae(sae_dir)
    n_lat = sae.W_enc.shape[1]
    vocab_json = json.load(open(tokenizer_json))['model']['vocab']
    inv = np.empty(len(vocab_json), dtype=object)
    for p, i in vocab_json.items():
        inv[i] = p
    pieces_of = lambda tok: [inv[i] for i in tok]
    rng = np.random.default_rng(SEED + 1)
    docs = np.arange(len(starts) - 1)
    docs = rng.permutation(docs[held_out(docs)])
    mine_docs, score_docs = docs[0::2], docs[1::2]
    mi, mv, mterms, mpos, mtexts = collect(reader, sae, ids, starts, mine_docs, MINE_TOKENS, pieces_of)
    print(f'mining set: {len(mterms)} tokens ({time.time() - t0:.0f} s)', flush=True)
    si, sv, sterms, _, _ = collect(reader, sae, ids, starts, score_docs, SCORE_TOKENS, pieces_of)
    print(f'scoring set: {len(sterms)} tokens ({time.time() - t0:.0f} s)', flush=True)

    term_vocab = {}
    ip, ix = incidence(mterms, term_vocab)
    M = sp.csr_matrix((np.ones(len(ix), dtype=np.float32), ix, ip), shape=(len(mterms), 10_000_000))
    ip2, ix2 = incidence(sterms, term_vocab)
    n_terms = len(term_vocab)
    M = M[:, :n_terms].tocsr()
    S = sp.csr_matrix((np.ones(len(ix2), dtype=np.bool_), ix2, ip2), shape=(len(sterms), n_terms))
    terms = [None] * n_terms
    for t, j in term_vocab.items():
        terms[j] = t
    base = np.asarray(M.sum(0)).ravel() / M.shape[0]
    term_count = np.asarray(M.sum(0)).ravel()

    # Strongest activations per latent (mining set).
    rows = np.repeat(np.arange(len(mi)), mi.shape[1]); lat = mi.ravel(); val = mv.ravel()
    keep = val > 0
    rows, lat, val = rows[keep], lat[keep], val[keep]
    order = np.lexsort((-val, lat))
    rows, lat, val = rows[order], lat[order], val[order]
    first = np.searchsorted(lat, np.arange(n_lat)); last = np.searchsorted(lat, np.arange(n_lat), 'right')
    sel_r, sel_c = [], []
    for j in range(n_lat):
        take = rows[first[j]:min(last[j], first[j] + MINE_PER_LATENT)]
        sel_r.extend(take); sel_c.extend([j] * len(take))
    A = sp.csr_matrix((np.ones(len(sel_r), dtype=np.float32), (sel_c, sel_r)), shape=(n_lat, M.shape[0]))
    counts = (A @ M).tocsr()
    n_active = np.asarray(A.sum(1)).ravel()
    print(f'term counts ({time.time() - t0:.0f} s)', flush=True)

    # Scoring set: which tokens fire each latent.
    s_rows = np.repeat(np.arange(len(si)), si.shape[1])
    s_keep = sv.ravel() > 0
    F = sp.csr_matrix((np.ones(int(s_keep.sum()), dtype=np.bool_), (si.ravel()[s_keep], s_rows[s_keep])), shape=(n_lat, len(si)))
    St = S.T.tocsr()

    out, detections, top_shares = [], [], []
    for j in range(n_lat):
        if n_active[j] < 3:
            out.append({'latent': j, 'label': None, 'source': SOURCE}); detections.append(None); continue
        row = counts.getrow(j)
        share = row.data / n_active[j]
        b = base[row.indices]
        ok = (row.data >= 3) & (share >= 0.08) & (term_count[row.indices] >= 3)
        score = np.where(ok, share * np.log(np.maximum(share / b, 1e-9)), -np.inf)
        best = [row.indices[k] for k in np.argsort(-score)[:12] if np.isfinite(score[k]) and score[k] > 0]
        chosen = []
        for tj in best:
            t = terms[tj]
            # Skip a term whose words are all in an already chosen phrase (keeps "white whale" and drops "whale").
            if any(set(t.split()) <= set(c.split()) or set(c.split()) <= set(t.split()) for c in chosen):
                continue
            chosen.append(t)
            if len(chosen) == LABEL_TERMS:
                break
        if not chosen:
            out.append({'latent': j, 'label': None, 'source': SOURCE}); detections.append(None); continue
        tids = [term_vocab[c] for c in chosen]
        # Detection on the scoring set.
        pos = F.getrow(j).indices
        neg_pool = np.setdiff1d(rng.choice(len(si), size=min(len(si), SCORE_PER_CLASS * 3), replace=False), pos)
        det = None
        if len(pos) >= 5:
            p = rng.choice(pos, size=min(len(pos), SCORE_PER_CLASS), replace=False)
            nneg = neg_pool[:SCORE_PER_CLASS]
            has = np.asarray(St[tids].sum(0)).ravel() > 0
            det = round(float((has[p].mean() + (1 - has[nneg].mean())) / 2), 3)
        # Specificity: share of the latent's top activations whose window holds its first label term.
        top_shares.append(float(share[list(row.indices).index(term_vocab[chosen[0]])]))
        head = ', '.join(json.dumps(c) for c in chosen)
        top = shown_example(M, rows[first[j]:min(last[j], first[j] + MINE_PER_LATENT)], tids)
        doc, t = mpos[top]
        room = MAX_LABEL - len(head) - len(' (e.g. "")')
        label = f'{head} (e.g. "{example(mtexts[doc], t, room)}")' if room >= 20 else head[:MAX_LABEL]
        out.append({'latent': j, 'label': label[:MAX_LABEL], 'source': SOURCE, **({'detection': det} if det is not None else {})})
        detections.append(det)
    with open(out_path, 'w', encoding='utf8') as f:
        for o in out:
            f.write(json.dumps(o, ensure_ascii=False) + '\n')
    d = np.array([x for x in detections if x is not None])
    labelled = sum(o['label'] is not None for o in out)
    summary = {'labelled': labelled, 'latents': n_lat, 'detection': {'mean': round(float(d.mean()), 3), 'median': round(float(np.median(d)), 3),
               'shareAbove0.7': round(float((d > 0.7).mean()), 3), 'scored': int(len(d))}, 'mineTokens': len(mterms), 'scoreTokens': len(sterms),
               'specificity': {'meanShareOfTopActivationsWithFirstTerm': round(float(np.mean(top_shares)), 3),
                               'shareOfLatentsWhereOneWordCoversHalf': round(float((np.array(top_shares) >= 0.5).mean()), 3)}}
    json.dump(summary, open(out_path + '.summary.json', 'w'), indent=2)
    print(json.dumps(summary), f'({time.time() - t0:.0f} s)', flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:6])
