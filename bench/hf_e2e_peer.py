#!/usr/bin/env python3
"""The peer for `fdpp bench`: Hugging Face transformers on the same named shape with random weights
made on the GPU (fp16), timed in the same device call. Prefill: one prompt of T random tokens, the
KV cache filled and the last position's logits (what `generate` asks for). Decode: a batch of B
prompts of C tokens prefilled, then greedy steps (forward + argmax), median ms per step. Attention
through SDPA, and through the eager path for decode (the "HF eager" figures of issue 5).

With --fdpp-json FILE... (the output of `fdpp bench --json`), prints fdpp beside HF, row by row.

Usage: python3 bench/hf_e2e_peer.py [--shape llama2-7b] [--prefill 128,1024] [--batch 1,16]
         [--context 128] [--steps 16] [--out FILE.json] [--fdpp-json FILE ...]
"""
import argparse
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from hf_shapes import SHAPES, hf_config  # noqa: E402


def ints(text):
    return [int(v) for v in text.split(",") if v]


ap = argparse.ArgumentParser()
ap.add_argument("--shape", default="llama2-7b", choices=sorted(SHAPES))
ap.add_argument("--prefill", type=ints, default=[128, 1024])
ap.add_argument("--batch", type=ints, default=[1, 16])
ap.add_argument("--context", type=ints, default=[128])
ap.add_argument("--steps", type=int, default=16)
ap.add_argument("--out", help="write the figures here as JSON")
ap.add_argument("--fdpp-json", nargs="*", default=[], help="fdpp bench --json outputs to print beside HF")
args = ap.parse_args()


def median_ms(times):
    times = sorted(times)
    return times[len(times) // 2]


def timed(run):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end), result


def random_tokens(vocab, batch, tokens):
    return torch.randint(3, vocab, (batch, tokens), device="cuda")


torch.manual_seed(0)
config = hf_config(args.shape)
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float16).eval()
vocab = config.vocab_size
print(f"# HF transformers {sys.modules['transformers'].__version__}, torch {torch.__version__}, "
      f"{args.shape} random fp16 on {torch.cuda.get_device_name()}", file=sys.stderr)


def prefill_ms(tokens, reps=5):
    ids = random_tokens(vocab, 1, tokens)
    times = []
    for i in range(reps + 2):  # two warm-up runs
        ms, _ = timed(lambda: model(ids, use_cache=True, logits_to_keep=1))
        if i >= 2:
            times.append(ms)
    return median_ms(times)


def decode_ms(batch, context, steps):
    ids = random_tokens(vocab, batch, context)
    out = model(ids, use_cache=True, logits_to_keep=1)
    cache, next_ids = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        ms, out = timed(lambda: model(next_ids, past_key_values=cache, use_cache=True))
        next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
        if i >= 2:
            times.append(ms)
    return median_ms(times)


rows = []
with torch.no_grad():
    model.config._attn_implementation = "sdpa"
    for tokens in args.prefill:
        rows.append({"phase": "prefill", "attention": "sdpa", "batch": 1, "tokens": tokens, "ms": prefill_ms(tokens)})
        print(f"prefill {tokens}: {rows[-1]['ms']:.3f} ms", file=sys.stderr)
    for attention in ("sdpa", "eager"):
        model.config._attn_implementation = attention
        for batch in args.batch:
            for context in args.context:
                try:
                    ms = decode_ms(batch, context, args.steps)
                except torch.cuda.OutOfMemoryError:
                    print(f"decode b{batch} c{context} {attention}: out of memory, skipped", file=sys.stderr)
                    torch.cuda.empty_cache()
                    continue
                rows.append({"phase": "decode", "attention": attention, "batch": batch, "tokens": context, "ms": ms})
                print(f"decode b{batch} c{context} {attention}: {ms:.3f} ms", file=sys.stderr)
                torch.cuda.empty_cache()

if args.out:
    with open(args.out, "w") as f:
        json.dump({"shape": args.shape, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)

fdpp = {}
for path in args.fdpp_json:
    with open(path) as f:
        for r in json.load(f)["rows"]:
            if "skipped" not in r:
                fdpp[(r["phase"], r["batch"], r["tokens"])] = r["ms"]

print(f"| phase | batch | tokens | HF attention | HF ms | fdpp ms | fdpp vs HF |")
print(f"| --- | ---: | ---: | --- | ---: | ---: | ---: |")
for r in rows:
    mine = fdpp.get((r["phase"], r["batch"], r["tokens"]))
    ours = f"{mine:.3f}" if mine else "-"
    ratio = f"{r['ms'] / mine:.2f}x" if mine else "-"
    print(f"| {r['phase']} | {r['batch']} | {r['tokens']} | {r['attention']} | {r['ms']:.3f} | {ours} | {ratio} |")
