"""Trains the demo encoder's distributional reader: Llama 2 token vectors from co-occurrence statistics.

Input: the arrays tokenize-corpus.ts writes (ids.npy, starts.npy). Method: symmetric co-occurrence counts in a
window of WINDOW tokens on each side, weighted 1/distance, never across documents and never with BOS;
positive PMI with context-distribution smoothing (alpha 0.75, Levy et al. 2015); truncated SVD (randomized,
seeded) to DIM dimensions; token vector = U * sqrt(S), unit-normalized. Tokens seen fewer than MIN_COUNT
times get the zero vector (the reader then sees only their context). Also writes each token's SIF weight
a / (a + p(token)) (Arora et al. 2017), which the reader's causal context average uses so that frequent
function tokens do not drown the topic.

Writes OUT/reader-weights.safetensors: `token_vectors` float16 [vocab, DIM], `token_weights` float32 [vocab].
Usage: python3 train_reader.py CORPUS_DIR OUT_DIR
"""
import json
import os
import struct
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

VOCAB = 32000
BOS = 1
WINDOW = 5
DIM = 256
MIN_COUNT = 5
ALPHA = 0.75
SIF_A = 1e-3
SEED = 20251206


def save_safetensors(path, tensors, metadata=None):
    """safetensors: u64 header length, JSON header (dtype, shape, data_offsets), raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype('float16'): 'F16', np.dtype('float32'): 'F32'}[arr.dtype]
        b = arr.tobytes()
        header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def cooccurrence(ids, doc):
    """Symmetric weighted co-occurrence matrix [VOCAB, VOCAB] (CSR, float64)."""
    total = None
    keep = ids != BOS
    for d in range(1, WINDOW + 1):
        a, b = ids[:-d], ids[d:]
        m = (doc[:-d] == doc[d:]) & keep[:-d] & keep[d:]
        a, b = a[m], b[m]
        w = np.full(a.shape[0], 1.0 / d)
        c = sp.coo_matrix((w, (a, b)), shape=(VOCAB, VOCAB)).tocsr()
        c = c + c.T
        total = c if total is None else total + c
    return total.tocsr()


def ppmi(c):
    c = c.tocsr()
    row = np.asarray(c.sum(axis=1)).ravel()
    col = np.asarray(c.sum(axis=0)).ravel()
    n = c.sum()
    col_a = col ** ALPHA
    col_a /= col_a.sum()
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    pmi = np.log(c.data * 1.0) - np.log(row[rows] / n) - np.log(col_a[c.indices]) - np.log(n)
    data = np.maximum(pmi, 0)
    out = sp.csr_matrix((data, c.indices, c.indptr), shape=c.shape)
    out.eliminate_zeros()
    return out.astype(np.float32)


def main(corpus_dir, out_dir):
    t0 = time.time()
    ids = np.load(os.path.join(corpus_dir, 'ids.npy')).astype(np.int64)
    starts = np.load(os.path.join(corpus_dir, 'starts.npy'))
    doc = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    counts = np.bincount(ids, minlength=VOCAB)
    print(f'{len(ids)} tokens, {len(starts) - 1} documents, {int((counts > 0).sum())} distinct tokens', flush=True)
    c = cooccurrence(ids, doc)
    print(f'co-occurrence: {c.nnz} pairs ({time.time() - t0:.0f} s)', flush=True)
    m = ppmi(c)
    del c
    print(f'ppmi: {m.nnz} positive ({time.time() - t0:.0f} s)', flush=True)
    u, s, _ = randomized_svd(m, DIM, n_iter=5, random_state=SEED)
    print(f'svd: top singular values {s[:4].round(1)} ({time.time() - t0:.0f} s)', flush=True)
    vec = u * np.sqrt(s)
    vec[counts < MIN_COUNT] = 0
    vec[BOS] = 0
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.where(norm > 0, vec / np.maximum(norm, 1e-12), 0)
    p = counts / counts.sum()
    weights = (SIF_A / (SIF_A + p)).astype(np.float32)
    weights[BOS] = 0
    os.makedirs(out_dir, exist_ok=True)
    meta = {'window': WINDOW, 'dim': DIM, 'min_count': MIN_COUNT, 'alpha': ALPHA, 'sif_a': SIF_A, 'seed': SEED,
            'tokens': len(ids), 'documents': len(starts) - 1, 'tokens_with_vectors': int((counts >= MIN_COUNT).sum())}
    save_safetensors(os.path.join(out_dir, 'reader-weights.safetensors'),
                     {'token_vectors': vec.astype(np.float16), 'token_weights': weights}, meta)
    np.save(os.path.join(corpus_dir, 'token_counts.npy'), counts)
    print(f'done in {time.time() - t0:.0f} s: {meta}', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
