#!/usr/bin/env python3
"""Writes a random-weight Hugging Face Llama-family checkpoint of a named shape (safetensors, fp16
or bf16) for benchmarks and golden tests on the GPU machine. Weights ~ normal(0, 0.02), as
transformers initialises them. Never write it into the repository.

Usage: python3 tools/make_random_llama.py SHAPE OUT_DIR [--dtype float16|bfloat16] [--tokenizer DIR]
SHAPE: llama2-7b | llama3-8b | qwen2-7b | mistral-7b | tiny (a 2-layer test shape)
"""
import argparse
import shutil
import sys
import time

import torch
from transformers import AutoModelForCausalLM

from hf_shapes import SHAPES, hf_config

ap = argparse.ArgumentParser()
ap.add_argument("shape", choices=sorted(SHAPES))
ap.add_argument("out_dir")
ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
ap.add_argument("--tokenizer", help="directory whose tokenizer.json / tokenizer_config.json are copied")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

start = time.time()
torch.manual_seed(args.seed)
config = hf_config(args.shape)
dtype = getattr(torch, args.dtype)
device = "cuda" if torch.cuda.is_available() else "cpu"
with torch.device(device):
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
model.save_pretrained(args.out_dir, safe_serialization=True)
if args.tokenizer:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{args.tokenizer}/{name}", f"{args.out_dir}/{name}")
params = sum(p.numel() for p in model.parameters())
print(f"{args.shape}: {params / 1e9:.2f}B parameters, {args.dtype}, written to {args.out_dir} "
      f"in {time.time() - start:.0f} s", file=sys.stderr)
