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
from transformers import AutoConfig, AutoModelForCausalLM

SHAPES = {
    "llama2-7b": dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                      max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0),
    "llama3-8b": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                      max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                        high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "qwen2-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                     max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0),
    "mistral-7b": dict(model_type="mistral", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
                       max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1000000.0,
                       sliding_window=None),
    "tiny": dict(model_type="llama", hidden_size=256, intermediate_size=688, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=32000,
                 max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0),
}

ap = argparse.ArgumentParser()
ap.add_argument("shape", choices=sorted(SHAPES))
ap.add_argument("out_dir")
ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
ap.add_argument("--tokenizer", help="directory whose tokenizer.json / tokenizer_config.json are copied")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

start = time.time()
torch.manual_seed(args.seed)
spec = dict(SHAPES[args.shape])
config = AutoConfig.for_model(spec.pop("model_type"), **spec)
dtype = getattr(torch, args.dtype)
device = "cuda" if torch.cuda.is_available() else "cpu"
with torch.device(device):
    model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype)
model.save_pretrained(args.out_dir, safe_serialization=True)
if args.tokenizer:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{args.tokenizer}/{name}", f"{args.out_dir}/{name}")
params = sum(p.numel() for p in model.parameters())
print(f"{args.shape}: {params / 1e9:.2f}B parameters, {args.dtype}, written to {args.out_dir} "
      f"in {time.time() - start:.0f} s", file=sys.stderr)
