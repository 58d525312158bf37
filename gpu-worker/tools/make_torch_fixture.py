#!/usr/bin/env python3
"""Make the PyTorch-exported reader fixture used by gpu-worker/src/encode/torch-reader.test.ts.

Everything here comes from outside this project's code: a small GPT-2-shaped model written in PyTorch and
exported by torch.onnx.export (the TorchScript exporter, as most Hugging Face exports are), two SAEs in SAELens
format (a JumpReLU and a TopK), and the expected pooled activations computed in float64 by PyTorch and numpy
straight from the formulas. The test then checks that Latentbase's worker, given these files, pools the same
values. Run with any Python that has torch and numpy (Debian's python3-torch works):

    python3 gpu-worker/tools/make_torch_fixture.py gpu-worker/src/encode/fixtures/torch-gpt2-tiny
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

VOCAB, D, HEADS, LAYERS, POSITIONS = 32000, 16, 2, 2, 64
D_SAE, K = 64, 6
LAYER = 1  # hidden_states[1]: the output of block 0 = blocks.0.hook_resid_post


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(D)
        self.qkv = torch.nn.Linear(D, 3 * D)
        self.proj = torch.nn.Linear(D, D)
        self.ln2 = torch.nn.LayerNorm(D)
        self.fc = torch.nn.Linear(D, 4 * D)
        self.out = torch.nn.Linear(4 * D, D)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q = q.view(b, t, HEADS, D // HEADS).transpose(1, 2)
        k = k.view(b, t, HEADS, D // HEADS).transpose(1, 2)
        v = v.view(b, t, HEADS, D // HEADS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // HEADS)
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        keep = causal[None, None, :, :] & mask[:, None, None, :].bool()
        att = att.masked_fill(~keep, -1e9).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(y)
        return x + self.out(torch.nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class TinyGpt(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(VOCAB, D)
        self.wpe = torch.nn.Embedding(POSITIONS, D)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(LAYERS)])

    def hidden_states(self, input_ids, attention_mask):
        pos = torch.arange(input_ids.shape[1]).unsqueeze(0)
        h = [self.wte(input_ids) + self.wpe(pos)]
        for blk in self.blocks:
            h.append(blk(h[-1], attention_mask))
        return h


class Reader(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.hidden_states(input_ids, attention_mask)[LAYER]


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main(out):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = TinyGpt().eval()
    os.makedirs(out, exist_ok=True)
    ids = torch.tensor([[1, 450, 3186, 338, 263], [1, 910, 11203, 29871, 2]])
    mask = torch.ones_like(ids)
    torch.onnx.export(Reader(model), (ids, mask), os.path.join(out, "reader.onnx"), opset_version=17,
                      input_names=["input_ids", "attention_mask"], output_names=["hidden_states.1"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                    "hidden_states.1": {0: "batch", 1: "tokens"}})

    # Documents (right-padded, BOS first): pooled over every real token but BOS.
    docs = [rng.integers(3, VOCAB, size=n).tolist() for n in (11, 7, 15, 3)]
    T = max(len(d) for d in docs) + 1
    batch_ids = np.zeros((len(docs), T), dtype=np.int64)
    attn = np.zeros((len(docs), T), dtype=np.int64)
    pool = np.zeros((len(docs), T), dtype=np.float64)
    for i, d in enumerate(docs):
        row = [1] + d
        batch_ids[i, : len(row)] = row
        batch_ids[i, len(row):] = 0
        attn[i, : len(row)] = 1
        pool[i, 1: len(row)] = 1
    with torch.no_grad():
        hidden = Reader(model.double())(torch.tensor(batch_ids), torch.tensor(attn)).numpy()

    expected = {"ids": batch_ids.tolist(), "attention": attn.tolist(), "poolMask": pool.tolist(), "saes": {}}
    for arch in ("jumprelu", "topk"):
        W_enc = rng.normal(0, 1 / math.sqrt(D), size=(D, D_SAE))
        W_dec = rng.normal(0, 0.3, size=(D_SAE, D))
        b_enc = rng.normal(0, 0.1, size=D_SAE)
        b_dec = rng.normal(0, 0.1, size=D)
        threshold = np.abs(rng.normal(0, 0.2, size=D_SAE)) + 0.05
        # Round to float32 as stored, then compute in float64.
        W_enc, W_dec, b_enc, b_dec, threshold = (a.astype(np.float32).astype(np.float64) for a in (W_enc, W_dec, b_enc, b_dec, threshold))
        folder = os.path.join(out, f"sae-{arch}")
        os.makedirs(folder, exist_ok=True)
        tensors = {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec}
        if arch == "jumprelu":
            tensors["threshold"] = threshold
        write_safetensors(os.path.join(folder, "sae_weights.safetensors"), tensors)
        cfg = {"architecture": arch, "d_in": D, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
               "apply_b_dec_to_input": True, "normalize_activations": "none",
               "metadata": {"model_name": "tiny-gpt", "hook_name": "blocks.0.hook_resid_post", "context_size": POSITIONS, "prepend_bos": True}}
        if arch == "topk":
            cfg["k"] = K
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg, f, indent=2)

        pre = (hidden - b_dec) @ W_enc + b_enc  # [B, T, S]
        if arch == "jumprelu":
            acts = np.where(pre > threshold, pre, 0.0)
        else:
            kth = -np.sort(-pre, axis=-1)[..., K - 1: K]
            acts = np.where(pre >= kth, np.maximum(pre, 0.0), 0.0)
        masked = np.where(pool[..., None] > 0, acts, -np.inf)
        pooled = np.maximum(masked.max(axis=1), 0.0)
        # A margin per latent and document: how close the max's pre-activation sits to its threshold / k-th value.
        expected["saes"][arch] = {"pooled": pooled.tolist()}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote {out}: reader.onnx ({os.path.getsize(os.path.join(out, 'reader.onnx'))} bytes), 2 SAEs, expected pooled values")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpu-worker/src/encode/fixtures/torch-gpt2-tiny")
