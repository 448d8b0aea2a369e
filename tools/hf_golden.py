#!/usr/bin/env python3
"""Golden logits from Hugging Face transformers for a checkpoint directory (the conformance source).

For each fixed prompt: HF's greedy continuation of --steps tokens (in the checkpoint's dtype), then
the logits of every position of prompt + continuation (teacher forcing) in the checkpoint's dtype
and in fp32. Writes DIR/golden/meta.json and DIR/golden/logits_<prompt>_<dtype>.bin (float32,
row-major [positions, vocab]). Run on the GPU machine after tools/make_random_llama.py.

Usage: python3 tools/hf_golden.py DIR [--steps 64]
"""
import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM

PROMPTS = [  # token ids, so no tokenizer is needed; the same for every vocabulary >= 32000
    [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889],
    [1, 3439, 17443, 338, 263, 3287, 310, 278, 4086, 297, 29871, 29906, 29900, 29906, 29941, 29892, 322, 372],
]

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--steps", type=int, default=64)
args = ap.parse_args()
out = os.path.join(args.dir, "golden")
os.makedirs(out, exist_ok=True)

model = AutoModelForCausalLM.from_pretrained(args.dir, dtype="auto", device_map="cuda").eval()
dtype_name = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}[model.dtype]
meta = {"dtype": dtype_name, "vocab": model.config.vocab_size, "prompts": []}
with torch.no_grad():
    sequences = []
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([prompt], device="cuda")
        seq = model.generate(ids, max_new_tokens=args.steps, min_new_tokens=args.steps, do_sample=False)[0]
        sequences.append(seq)
        logits = model(seq[None]).logits[0].float().cpu().numpy()
        logits.tofile(os.path.join(out, f"logits_{i}_{dtype_name}.bin"))
        meta["prompts"].append({"prompt": prompt, "sequence": seq.tolist(), "positions": int(seq.shape[0])})
    model = model.float()
    for i, seq in enumerate(sequences):
        logits = model(seq[None]).logits[0].float().cpu().numpy()
        logits.tofile(os.path.join(out, f"logits_{i}_float32.bin"))
json.dump(meta, open(os.path.join(out, "meta.json"), "w"), indent=1)
print(f"golden logits for {len(PROMPTS)} prompts x {args.steps} steps ({dtype_name} and float32) in {out}")
