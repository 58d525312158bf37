"""Fits the demo encoder's TopK SAE to the distributional reader's hidden states and writes it in SAELens format.

Data: a seeded sample of the training corpus's documents (tokenize-corpus.ts output), one document in 20 held
out for evaluation. TopK SAE (Gao et al. 2024): encoder init = decoder transpose, unit-norm decoder rows,
b_dec init = data mean, Adam, AuxK loss on latents dead for DEAD_AFTER tokens, linear LR decay at the end.
Inputs are scaled to unit mean norm for training; the scale is folded into the saved weights (SAELens
normalize_activations "none"). Torch on CPU, 2 threads.

Usage: python3 train_sae.py CORPUS_DIR BUILD_DIR OUT_SAE_DIR [--latents N] [--k K] [--tokens N] [--epochs E]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from reader_math import Reader  # noqa: E402
from train_reader import save_safetensors  # noqa: E402

SEED = 20251206
HELD_OUT_EVERY = 20


def held_out(doc):
    return doc % HELD_OUT_EVERY == 7


class TopKSae(torch.nn.Module):
    def __init__(self, d, n, k, mean):
        super().__init__()
        g = torch.Generator().manual_seed(SEED)
        w = torch.randn(n, d, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(w)
        self.W_enc = torch.nn.Parameter(w.t().clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(n))
        self.b_dec = torch.nn.Parameter(mean.clone())
        self.k = k

    def pre(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def decode(self, idx, vals):
        return F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode='sum') + self.b_dec

    def forward(self, x):
        pre = self.pre(x)
        vals, idx = pre.topk(self.k, dim=1)
        vals = F.relu(vals)
        return pre, idx, vals, self.decode(idx, vals)


def hidden_states(reader, ids, starts, docs, limit):
    """Hidden states of the documents' tokens (BOS left out), float16, until `limit` tokens."""
    lengths = np.diff(starts)[docs] - 1
    total = int(min(limit, lengths.sum()))
    d = reader.vectors.shape[1] * 2
    out = np.empty((total, d), dtype=np.float16)
    owner = np.empty(total, dtype=np.int32)
    n = 0
    for doc in docs:
        h = reader.hidden(ids[starts[doc]:starts[doc + 1]])[1:]
        take = min(len(h), total - n)
        out[n:n + take] = h[:take]
        owner[n:n + take] = doc
        n += take
        if n >= total:
            break
    return out[:n], owner[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('corpus'); ap.add_argument('build'); ap.add_argument('out')
    ap.add_argument('--latents', type=int, default=8192)
    ap.add_argument('--k', type=int, default=16)
    ap.add_argument('--tokens', type=int, default=4_000_000)
    ap.add_argument('--epochs', type=float, default=1.0)
    ap.add_argument('--batch', type=int, default=4096)
    ap.add_argument('--lr', type=float, default=4e-4)
    ap.add_argument('--decay', type=float, default=0.9)
    ap.add_argument('--eval-tokens', type=int, default=300_000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    t0 = time.time()
    ids = np.load(os.path.join(args.corpus, 'ids.npy')).astype(np.int64)
    starts = np.load(os.path.join(args.corpus, 'starts.npy'))
    ndocs = len(starts) - 1
    rng = np.random.default_rng(SEED)
    order = rng.permutation(ndocs)
    train_docs = order[~held_out(order)]
    test_docs = order[held_out(order)]

    # The context part's gain makes its mean norm equal the token part's, so neither half dominates the SAE.
    reader_cfg_path = os.path.join(args.build, 'reader.json')
    if os.path.exists(reader_cfg_path):
        reader_cfg = json.load(open(reader_cfg_path))
        assert reader_cfg['decay'] == args.decay, 'reader.json was made with another decay'
    else:
        probe = Reader(os.path.join(args.build, 'reader-weights.safetensors'), args.decay, 1.0)
        en, cn = [], []
        for doc in train_docs[:3000]:
            e, c = probe.context(ids[starts[doc]:starts[doc + 1]])
            keep = np.linalg.norm(e, axis=1) > 0
            en.append(np.linalg.norm(e[keep], axis=1)); cn.append(np.linalg.norm(c[keep], axis=1))
        gain = round(float(np.concatenate(en).mean() / np.concatenate(cn).mean()), 4)
        reader_cfg = {'decay': args.decay, 'gain': gain}
        json.dump(reader_cfg, open(reader_cfg_path, 'w'))
    reader = Reader(os.path.join(args.build, 'reader-weights.safetensors'), reader_cfg['decay'], reader_cfg['gain'])
    print(f'reader {reader_cfg}', flush=True)

    x_np, _ = hidden_states(reader, ids, starts, train_docs, args.tokens)
    xt_np, owner_t = hidden_states(reader, ids, starts, test_docs, args.eval_tokens)
    print(f'hidden states: train {x_np.shape}, held out {xt_np.shape} ({time.time() - t0:.0f} s)', flush=True)
    norms = np.linalg.norm(x_np[:200_000].astype(np.float32), axis=1)
    scale = float(1.0 / norms.mean())
    x = torch.from_numpy(x_np)
    d = x.shape[1]
    mean = torch.from_numpy(x_np[:200_000].astype(np.float32).mean(0) * scale)
    sae = TopKSae(d, args.latents, args.k, mean)
    opt = torch.optim.Adam(sae.parameters(), lr=args.lr, betas=(0.9, 0.999))
    steps = int(math.ceil(args.epochs * len(x) / args.batch))
    decay_from = int(steps * 0.8)
    last_fired = torch.zeros(args.latents, dtype=torch.long)
    dead_after = 500_000 // args.batch
    k_aux = min(d // 2, 256)
    tok_seen = 0
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
    pos = 0
    for step in range(steps):
        if pos + args.batch > len(x):
            perm = torch.randperm(len(x)); pos = 0
        xb = x[perm[pos:pos + args.batch]].float() * scale
        pos += args.batch
        pre, idx, vals, recon = sae(xb)
        err = xb - recon
        var = ((xb - xb.mean(0)) ** 2).sum()
        loss = (err ** 2).sum() / var
        fired = torch.zeros(args.latents, dtype=torch.bool)
        fired[idx[vals > 0]] = True
        last_fired[fired] = step
        dead = (step - last_fired) > dead_after
        n_dead = int(dead.sum())
        if n_dead > 0:
            masked = pre.masked_fill(~dead, -1e9)
            av, ai = masked.topk(min(k_aux, n_dead), dim=1)
            aux = F.embedding_bag(ai, sae.W_dec, per_sample_weights=F.relu(av), mode='sum')
            loss = loss + (1 / 32) * ((err.detach() - aux) ** 2).sum() / var
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # Keep decoder rows unit-norm: drop the gradient component along each row, then renormalize.
        with torch.no_grad():
            g = sae.W_dec.grad
            if g is not None:
                g -= (g * sae.W_dec).sum(1, keepdim=True) * sae.W_dec
        lr = args.lr * (1.0 if step < decay_from else max(0.0, (steps - step) / (steps - decay_from)))
        for group in opt.param_groups:
            group['lr'] = lr
        opt.step()
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)
        tok_seen += args.batch
        if step % 100 == 0 or step == steps - 1:
            print(f'step {step}/{steps} loss {float(loss):.4f} dead {n_dead} ({time.time() - t0:.0f} s)', flush=True)

    # Held-out evaluation.
    with torch.no_grad():
        xt = torch.from_numpy(xt_np).float() * scale
        sse = 0.0
        fires = torch.zeros(args.latents, dtype=torch.long)
        all_idx = []
        all_vals = []
        for i in range(0, len(xt), 8192):
            xb = xt[i:i + 8192]
            _, idx, vals, recon = sae(xb)
            sse += float(((xb - recon) ** 2).sum())
            fires += torch.bincount(idx[vals > 0], minlength=args.latents)
            all_idx.append(idx); all_vals.append(vals)
        tot = float(((xt - xt.mean(0)) ** 2).sum())
        fve = 1 - sse / tot
        idx = torch.cat(all_idx).numpy(); vals = torch.cat(all_vals).numpy()
    l0 = float((vals > 0).sum(1).mean())
    dead_share = float((fires == 0).float().mean())
    # Active latents per document (max pooling: present when any token fires).
    per_doc = []
    bounds = np.flatnonzero(np.diff(owner_t)) + 1
    for seg in np.split(np.arange(len(owner_t)), bounds):
        v = vals[seg]; i = idx[seg]
        per_doc.append(len(np.unique(i[v > 0])))
    results = {'fractionOfVarianceExplained': round(fve, 4), 'meanL0': round(l0, 2), 'deadShare': round(dead_share, 4),
               'activeLatentsPerDocument': {'mean': round(float(np.mean(per_doc)), 1), 'median': float(np.median(per_doc))},
               'heldOutTokens': int(len(xt)), 'heldOutDocuments': len(per_doc)}
    print(json.dumps(results), flush=True)

    # Save in SAELens format with the input scale folded in.
    os.makedirs(args.out, exist_ok=True)
    with torch.no_grad():
        W_enc = (sae.W_enc * scale).numpy()
        W_dec = (sae.W_dec / scale).numpy()
        b_dec = (sae.b_dec / scale).numpy()
        b_enc = sae.b_enc.numpy()
    save_safetensors(os.path.join(args.out, 'sae_weights.safetensors'), {
        'W_enc': W_enc.astype(np.float16), 'b_enc': b_enc.astype(np.float16),
        'W_dec': W_dec.astype(np.float16), 'b_dec': b_dec.astype(np.float16)})
    cfg = {'architecture': 'topk', 'd_in': d, 'd_sae': args.latents, 'k': args.k, 'dtype': 'float16', 'device': 'cpu',
           'apply_b_dec_to_input': True, 'normalize_activations': 'none', 'reshape_activations': 'none',
           'rescale_acts_by_decoder_norm': False,
           'metadata': {'model_name': 'latentbase-demo-reader', 'hook_name': 'blocks.0.hook_resid_post', 'hook_head_index': None,
                        'prepend_bos': True, 'context_size': 512, 'exclude_special_tokens': True,
                        'dataset_path': 'see docs/demo-encoder.md'}}
    json.dump(cfg, open(os.path.join(args.out, 'cfg.json'), 'w'), indent=2)
    report = {'config': vars(args), 'reader': reader_cfg, 'inputScale': scale, 'steps': steps,
              'trainTokens': int(len(x)), 'results': results, 'seconds': round(time.time() - t0, 1)}
    json.dump(report, open(os.path.join(args.out, 'train-report.json'), 'w'), indent=2)
    print(f'wrote {args.out} in {time.time() - t0:.0f} s', flush=True)


if __name__ == '__main__':
    main()
