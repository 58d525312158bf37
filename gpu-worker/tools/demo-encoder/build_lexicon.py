"""Builds the offline embedder's lexicon: for each common English word, its closest words in meaning.

Word vectors: whitespace-word co-occurrence over the demo encoder's training corpus (window 5 each side,
weighted 1/distance), PPMI with context smoothing 0.75, truncated SVD (seeded) to DIM dimensions, then
retrofitted to WordNet (Faruqui et al. 2015): each word is pulled toward the words it shares a synset with,
so "physician" meets "doctor" even where their contexts differ. A word's neighbours are its WordNet synonyms
in the vocabulary, then its nearest words by cosine (>= MIN_SIM), at most NEIGHBOURS in all.

Writes the lexicon as a text file (shared/assets/offline-lexicon.txt): one line per word, "word neighbour:similarity
...", which the offline embedder reads on first use (Node: the file; the Worker: its static assets, not its script);
and its version as a TypeScript module (shared/src/embeddings/offline-lexicon.ts), part of the embedder's cache key.
Usage: python3 build_lexicon.py DOCS.jsonl LEXICON.txt VERSION.ts
"""
import collections
import json
import os
import re
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

VOCAB = 40000
LEXICON = 24000
MIN_COUNT = 15
WINDOW = 5
DIM = 200
NEIGHBOURS = 6
MIN_SIM = 0.5
SEED = 20251206
WORD = re.compile(r'[^\W_]+')
# offline.ts's stopwords have no neighbours of their own (they are dropped before lookup).
STOPWORDS = set(('a an and are as at be been but by for from had has have he her his i if in into is it its me my of on or our '
                 'she so than that the their them then there these they this those to us was we were what when where which who '
                 'will with would you your about also can do does did just more most other some such only own same too very '
                 'e g eg etc').split())


def wordnet_synsets(vocab_index):
    base = '/usr/share/wordnet'
    groups = []
    for pos in ['noun', 'verb', 'adj', 'adv']:
        path = os.path.join(base, f'data.{pos}')
        if not os.path.exists(path):
            print(f'no WordNet ({path}): lexicon without synonyms', file=sys.stderr)
            return []
        with open(path, encoding='latin-1') as fh:
            for line in fh:
                if line.startswith('  ') or '|' not in line:
                    continue
                f = line.split('|', 1)[0].split()
                n = int(f[3], 16)
                words = {re.sub(r'\(.*\)$', '', f[4 + 2 * i]).lower() for i in range(n)}
                ids = sorted({vocab_index[w] for w in words if w in vocab_index})
                if len(ids) > 1:
                    groups.append(ids)
    return groups


def main(docs_path, out_path, version_path):
    t0 = time.time()
    counts = collections.Counter()
    docs = []
    with open(docs_path, encoding='utf8') as fh:
        for line in fh:
            words = WORD.findall(json.loads(line)['text'].lower())
            docs.append(words)
            counts.update(words)
    vocab = [w for w, c in counts.most_common() if c >= MIN_COUNT and not w.isdigit() and len(w) > 1][:VOCAB]
    index = {w: i for i, w in enumerate(vocab)}
    print(f'{sum(counts.values())} words, vocabulary {len(vocab)} ({time.time() - t0:.0f} s)', flush=True)
    seq = np.array([index.get(w, -1) for d in docs for w in d], dtype=np.int64)
    doc = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    c = None
    for dist in range(1, WINDOW + 1):
        a, b = seq[:-dist], seq[dist:]
        m = (doc[:-dist] == doc[dist:]) & (a >= 0) & (b >= 0)
        x = sp.coo_matrix((np.full(int(m.sum()), 1.0 / dist), (a[m], b[m])), shape=(len(vocab), len(vocab))).tocsr()
        x = x + x.T
        c = x if c is None else c + x
    row = np.asarray(c.sum(1)).ravel(); col = np.asarray(c.sum(0)).ravel(); n = c.sum()
    col_a = col ** 0.75; col_a /= col_a.sum()
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    data = np.maximum(np.log(c.data) - np.log(row[rows] / n) - np.log(col_a[c.indices]) - np.log(n), 0)
    m = sp.csr_matrix((data, c.indices, c.indptr), shape=c.shape).astype(np.float32)
    u, s, _ = randomized_svd(m, DIM, n_iter=5, random_state=SEED)
    vec = u * np.sqrt(s)
    vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
    print(f'svd done ({time.time() - t0:.0f} s)', flush=True)

    groups = wordnet_synsets(index)
    synonyms = collections.defaultdict(set)
    for g in groups:
        for i in g:
            synonyms[i].update(j for j in g if j != i)
    # Retrofitting: q_i = (deg_i * q_i_hat + sum_j q_j) / (2 deg_i), 10 iterations (alpha = beta = 1).
    q = vec.copy()
    for _ in range(10):
        for i, nb in synonyms.items():
            nb = list(nb)
            q[i] = (len(nb) * vec[i] + q[nb].sum(0)) / (2 * len(nb))
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
    print(f'retrofitted {len(synonyms)} words to {len(groups)} synsets ({time.time() - t0:.0f} s)', flush=True)

    lines = []
    keep = [i for i, w in enumerate(vocab[:LEXICON]) if w not in STOPWORDS]
    for start in range(0, len(keep), 2048):
        block = keep[start:start + 2048]
        sims = q[block] @ q[:LEXICON].T
        for r, i in enumerate(block):
            sims[r, i] = -1
            out = []
            for j in sorted((j for j in synonyms.get(i, ()) if j < LEXICON), key=lambda j: -sims[r, j]):
                if vocab[j] not in STOPWORDS and sims[r, j] > 0.2:
                    out.append((j, sims[r, j]))
            for j in np.argsort(-sims[r])[:NEIGHBOURS * 2]:
                if len(out) >= NEIGHBOURS or sims[r, j] < MIN_SIM:
                    break
                if vocab[j] not in STOPWORDS and all(j != o for o, _ in out):
                    out.append((j, sims[r, j]))
            out = out[:NEIGHBOURS]
            if out:
                lines.append(vocab[i] + ' ' + ' '.join(f'{vocab[j]}:{min(0.99, max(0.0, float(s))):.2f}' for j, s in out))
    body = '\n'.join(lines)
    assert '`' not in body and '\\' not in body and '${' not in body
    header = ('/** @module Generated by gpu-worker/tools/demo-encoder/build_lexicon.py (do not edit): the version of the offline embedder\'s lexicon. */\n'
              '/**\n * The lexicon itself is shared/assets/offline-lexicon.txt, one line per word: "word neighbour:similarity ...", from\n'
              ' * PPMI+SVD word vectors over the demo encoder\'s training text retrofitted to WordNet synsets (WordNet 3.0, Princeton\n'
              ' * University licence). It is read on first use (offline.ts), not bundled: see docs/demo-encoder.md.\n */\n')
    with open(out_path, 'w', encoding='utf8', newline='') as f:
        f.write(body)
    with open(version_path, 'w', encoding='utf8') as f:
        f.write(header + f'export const LEXICON_VERSION = \'lexicon-{SEED}-{len(lines)}\'\n\n'
                '/** Name of the lexicon file in shared/assets/, and its path among the Worker\'s static assets (web/dist). */\n'
                f'export const LEXICON_FILE = \'{os.path.basename(out_path)}\'\n')
    print(f'wrote {len(lines)} words ({os.path.getsize(out_path) / 1e6:.2f} MB) in {time.time() - t0:.0f} s', flush=True)
    for w in ['cash', 'physician', 'doctor', 'whale', 'unsubscribe', 'advertising', 'president', 'war', 'software', 'sailor']:
        if w in index:
            i = index[w]
            print(w, [vocab[j] for j in np.argsort(-(q[:LEXICON] @ q[i]))[1:8]])


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3])
