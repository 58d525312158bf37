#!/usr/bin/env python3
"""The GPT-2-sized encode step in PyTorch, for GPU machines that cannot run the worker: reader alone against reader +
SAE + max pooling, tokens per second and their ratio (issue 13's goal: fused >= 90% of the reader's throughput).

The worker's GPU path is onnxruntime-node's CUDA provider (`scripts/gpu-bench.sh` runs it where a machine has the
network to install it). A machine with PyTorch and CUDA but no Node, npm or onnxruntime CUDA build (this workplace's
lent GPU machines reach no network) runs this instead: the same model as `make_gpt2_bench.py` exports (GPT-2 small's
shape, random weights, the 8 blocks `blocks.8.hook_resid_pre` needs) and the same per-batch work as the fused graph
(`gpu-worker/src/encode/fused-graph.ts`): token norms and the outlier rule (tokens over ratio x the document's median
norm leave the pool), x - b_dec, the SAE product in float16 (or float32) with the bias, the masked max over tokens
and its argmax, ReLU, and the copy of pooled values and argmaxes back to the host that the worker then reads. Reader
alone: the hidden state and one reduction of it copied back, as the worker's reader-only session does. Random token
ids, right-padded batches of --batch documents x --length tokens. A proxy: eager PyTorch kernels, not onnxruntime's,
so read the ratio as the cost the SAE side adds to a GPU forward pass, not as the worker's own figure.

    python3 gpu-worker/tools/gpu_proxy_bench.py --device cuda [--tokens 262144 --batch 32 --length 256]
    python3 gpu-worker/tools/gpu_proxy_bench.py --device cpu --blocks 2 --width 64 --heads 2 --d-sae 512 --layer 1 \\
        --tokens 2048 --batch 4 --length 64 --check

--check also compares the pooled values and argmaxes of the timed path with a float64 computation straight from the
formulas on one batch, and exits non-zero when they differ (the test runs it so). Prints one JSON line last.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gpt2_bench import Gpt2, Reader, centre, random_sae  # noqa: E402


def pooled_max(hidden, pool, W_enc, b_enc, b_dec, ratio, dtype):
    """The fused graph's max pooling: outlier tokens out, centring, (x - b_dec) W + b in `dtype`, masked max, ReLU."""
    norms = hidden.norm(dim=-1)
    # The lower median of each document's pooled norms (masked tokens sort last), as the graph's outlier stage takes it.
    count = pool.sum(dim=1)
    ranked = torch.where(pool, norms, torch.full_like(norms, float("inf"))).sort(dim=1).values
    median = ranked.gather(1, ((count - 1).clamp(min=0) // 2).long().unsqueeze(1))
    keep = pool & (norms <= ratio * median)
    x = (centre(hidden) - b_dec).to(dtype)
    pre = x @ W_enc + b_enc
    pre = pre.masked_fill(~keep.unsqueeze(-1), float("-inf"))
    best, argmax = pre.max(dim=1)
    return torch.relu(best).float(), argmax, (pool & ~keep).sum(dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--blocks", type=int, default=12)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--positions", type=int, default=1024)
    p.add_argument("--layer", type=int, default=8)
    p.add_argument("--d-sae", type=int, default=24576)
    p.add_argument("--l0", type=float, default=32)
    p.add_argument("--sae-dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--tokens", type=int, default=262144, help="tokens timed per path (after one warm-up batch)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--outlier-ratio", type=float, default=100.0)
    p.add_argument("--tf32", action="store_true", help="let float32 matrix products use TF32 (onnxruntime's CUDA default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cpu" and args.sae_dtype == "float16":
        raise SystemExit("--sae-dtype float16 needs --device cuda (PyTorch has no float16 matrix product on the CPU)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    model = Gpt2(args.vocab, args.positions, args.width, args.heads, args.blocks).eval()
    # Only the blocks the hook reads, as the exporter traces them.
    model.h = model.h[: args.layer]
    reader = Reader(model, args.layer)
    W_enc, _, b_enc, b_dec, l0 = random_sae(reader, args.width, args.d_sae, args.l0, args.vocab, args.positions, gen)
    reader = reader.to(device)
    dtype = torch.float16 if args.sae_dtype == "float16" else torch.float32
    W = W_enc.to(device, dtype)
    bias = b_enc.to(device, dtype)
    bdec = b_dec.to(device)

    # Right-padded batches: lengths drawn between half and all of --length, BOS first and out of the pool.
    batches = []
    n_batches = max(1, -(-args.tokens // (args.batch * args.length)))
    real = 0
    for _ in range(n_batches + 1):
        lengths = torch.randint(args.length // 2, args.length + 1, (args.batch,), generator=gen)
        ids = torch.randint(3, args.vocab - 1, (args.batch, args.length), generator=gen)
        ids[:, 0] = args.vocab - 1
        mask = (torch.arange(args.length)[None, :] < lengths[:, None]).long()
        pool = mask.bool().clone()
        pool[:, 0] = False
        batches.append((ids.to(device), mask.to(device), pool.to(device)))
    timed = batches[1:]
    real = sum(int(b[1].sum()) for b in timed)
    padded = len(timed) * args.batch * args.length

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def reader_only(b):
        h = reader(b[0], b[1])
        return h.sum(dim=-1).cpu()

    def fused(b):
        h = reader(b[0], b[1])
        pooled, argmax, outliers = pooled_max(h, b[2], W, bias, bdec, args.outlier_ratio, dtype)
        return pooled.cpu(), argmax.cpu(), outliers.cpu()

    results = {}
    with torch.inference_mode():
        for name, step in (("reader", reader_only), ("fused", fused)):
            step(batches[0])  # warm-up: kernels chosen, memory pooled
        # Alternating rounds, so that a clock or a neighbour that changes mid-run slows both alike.
        seconds = {"reader": 0.0, "fused": 0.0}
        for b in timed:
            for name, step in (("reader", reader_only), ("fused", fused)):
                sync()
                t = time.perf_counter()
                step(b)
                sync()
                seconds[name] += time.perf_counter() - t
        for name in seconds:
            results[name] = {"seconds": round(seconds[name], 4), "tokens_per_s": round(padded / seconds[name])}

        if args.check:
            ids, mask, pool = batches[1]
            pooled, argmax, outliers = fused(batches[1])
            # The reference straight from the formulas (as make_gpt2_bench.py --reference writes it), in float64: no
            # outlier rule, so the check batch must have none (random ids at the default ratio have none).
            hidden = reader.double()(ids, mask)
            reader.float()
            f64 = dict(device=device, dtype=torch.float64)
            acts = torch.relu((centre(hidden) - b_dec.to(**f64)) @ W_enc.to(**f64) + b_enc.to(**f64))
            acts = torch.where(pool.unsqueeze(-1), acts, torch.full_like(acts, -1.0))
            ref, ref_arg = acts.max(dim=1)
            ref, ref_arg = ref.clamp(min=0).cpu(), ref_arg.cpu()
            if int(outliers.sum()) != 0:
                raise SystemExit(f"check batch has {int(outliers.sum())} outlier tokens: use a larger --outlier-ratio")
            scale = ref.abs().max().clamp(min=1e-6)
            err = ((pooled.double() - ref).abs() / scale).max().item()
            fired = ref > 1e-2 * scale
            agree = (argmax[fired] == ref_arg[fired]).float().mean().item() if fired.any() else 1.0
            results["check"] = {"max_error_over_max": err, "argmax_agree": agree, "active": int(fired.sum())}
            # float16 rounds the product to ~1e-3 of its inputs' scale: near-ties may pick another token.
            tolerance, agreement = (2e-2, 0.95) if dtype == torch.float16 else (1e-4, 0.99)
            if not (err <= tolerance and agree >= agreement and fired.any()):
                print(json.dumps(results["check"]))
                raise SystemExit("check failed: the timed path does not match the float64 formulas")

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    ratio = results["fused"]["tokens_per_s"] / results["reader"]["tokens_per_s"]
    print(f"{name}: {len(timed)} batches of {args.batch} x {args.length} ({padded} padded tokens, {real} real), "
          f"SAE {args.sae_dtype} {args.width} x {args.d_sae}, L0 {l0:.1f}")
    print(f"reader alone {results['reader']['tokens_per_s']:,} tokens/s; reader + SAE + pooling "
          f"{results['fused']['tokens_per_s']:,} tokens/s: fused throughput {100 * ratio:.1f}% of the reader's (goal >= 90%)")
    print(json.dumps({"device": name, "sae_dtype": args.sae_dtype, "tf32": args.tf32, "batches": len(timed),
                      "padded_tokens": padded, "real_tokens": real, "fused_over_reader": round(ratio, 4), **results}))


if __name__ == "__main__":
    main()
