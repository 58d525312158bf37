#!/usr/bin/env python3
"""Export a Hugging Face causal LM as a Latentbase reader: an ONNX graph whose output is one layer's hidden states.

Run where you have Python and the internet (not needed on the machine that encodes):

    pip install "torch>=2.2" "transformers>=4.44" "onnx>=1.16"
    python gpu-worker/tools/export_reader.py --model gpt2 --hidden-state 8 --out encoders/gpt2-small-res-jb
    python gpu-worker/tools/export_reader.py --model google/gemma-2-2b --hidden-state 21 --out encoders/gemma-2-2b-gemmascope-16k
    python gpu-worker/tools/export_reader.py --model meta-llama/Llama-3.1-8B-Instruct --hidden-state 20 --dtype float16 \
        --out encoders/llama-3.1-8b-goodfire-l19

Which hidden-state index matches which SAE hook (Hugging Face `output_hidden_states`):
  hidden_states[0]     = the embedding output            = blocks.0.hook_resid_pre
  hidden_states[i]     = the output of block i-1          = blocks.{i-1}.hook_resid_post = blocks.{i}.hook_resid_pre
  hidden_states[-1]    has the model's final norm applied: do not use it for a resid SAE of the last block.
So gpt2-small-res-jb `blocks.8.hook_resid_pre` is index 8; Gemma Scope `layer_20` (resid_post) is index 21;
Goodfire Llama-3.1-8B layer 19 (`model.layers.19` output) is index 20; sparsify `layers.N` is index N + 1.

The script keeps only the blocks the chosen layer needs (a layer-8 reader of a 12-layer model runs 8 blocks),
names the output `hidden_states.{index}`, writes tokenizer.json / tokenizer_config.json beside it, and switches to
ONNX external data (reader.onnx + reader.onnx.data) when the weights pass protobuf's 2 GB limit.
Preprocessing an SAE expects (e.g. centring for gpt2-small-res-jb, trained with TransformerLens's
centre_writing_weights) is declared in encoder.json ("preprocess": "center"), not baked into the export.
"""
import argparse
import os

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face model id or local path")
    p.add_argument("--revision", default=None, help="commit sha to pin (recommended)")
    p.add_argument("--hidden-state", type=int, required=True, help="index into output_hidden_states (see above)")
    p.add_argument("--out", required=True, help="output folder (the encoder folder)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="weights in the ONNX file")
    p.add_argument("--opset", type=int, default=17)
    args = p.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer
    import onnx

    os.makedirs(args.out, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(args.model, revision=args.revision)
    tok.save_pretrained(args.out)  # tokenizer.json + tokenizer_config.json (chat template included)

    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.model, revision=args.revision, torch_dtype=dtype,
                                                 attn_implementation="eager")
    model.eval()
    base = model.base_model  # GPT2Model, GemmaModel, LlamaModel ...
    blocks_attr = "h" if hasattr(base, "h") else "layers"
    blocks = getattr(base, blocks_attr)
    n_layers = len(blocks)
    if not 0 <= args.hidden_state <= n_layers:
        raise SystemExit(f"--hidden-state must be in 0..{n_layers} for this model ({n_layers} blocks)")
    if args.hidden_state == n_layers:
        print(f"warning: hidden_states[{n_layers}] is after the final norm in most models")
    # Drop the blocks after the chosen layer: the reader's forward pass is the encoding cost.
    setattr(base, blocks_attr, torch.nn.ModuleList(list(blocks)[: max(args.hidden_state, 1)]))

    index = args.hidden_state

    class Reader(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def forward(self, input_ids, attention_mask):
            out = self.base(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
            return out.hidden_states[index]

    reader = Reader(base)
    ids = torch.tensor([[tok.bos_token_id or 0] + [100 + i for i in range(15)]] * 2)
    mask = torch.ones_like(ids)
    out_name = f"hidden_states.{index}"
    path = os.path.join(args.out, "reader.onnx")
    with torch.no_grad():
        torch.onnx.export(
            reader, (ids, mask), path, dynamo=False, opset_version=args.opset,
            input_names=["input_ids", "attention_mask"], output_names=[out_name],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          out_name: {0: "batch", 1: "tokens"}},
        )
    m = onnx.load(path, load_external_data=True)
    size = sum(t.ByteSize() for t in m.graph.initializer)
    if size > 1_900_000_000:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="reader.onnx.data")
        print(f"weights {size / 1e9:.1f} GB: written with external data (reader.onnx + reader.onnx.data)")
    print(f"wrote {path}: inputs input_ids, attention_mask; output {out_name} [batch, tokens, {model.config.hidden_size}]")
    print('encoder.json: "reader": { "model": "reader.onnx", "tokenizer": "tokenizer.json", '
          '"tokenizerConfig": "tokenizer_config.json", "inputs": { "ids": "input_ids", "mask": "attention_mask" }, '
          f'"output": "{out_name}", ... }}')


if __name__ == "__main__":
    main()
