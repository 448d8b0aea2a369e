#!/usr/bin/env python3
"""Load benchmark for `fdpp serve` (standard library only, so it runs on the GPU machine):
N concurrent streaming clients send completions; prints throughput (generated tokens/s) and
latency percentiles (time to first token, inter-token gap, request total) per concurrency level.

Usage: python3 tools/load_bench.py URL MODEL [--concurrency 1 8 32 64] [--requests-per-client 4]
       [--prompt-words 64] [--max-tokens 128]
"""
import argparse
import json
import random
import statistics
import threading
import time
import urllib.request


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def one_request(url, model, prompt, max_tokens, out):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "ignore_eos": True}).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    stamps = []
    with urllib.request.urlopen(req, timeout=600) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text") is not None:
                stamps.append(time.perf_counter())
    end = time.perf_counter()
    out.append({"ttft": (stamps[0] - start) if stamps else float("nan"),
                "gaps": [b - a for a, b in zip(stamps, stamps[1:])],
                "total": end - start, "chunks": len(stamps)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("model")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--prompt-words", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    words = "the a time story of and in was little to she he it day big they with".split()
    rows = []
    for c in args.concurrency:
        results = []
        def client(seed):
            rng = random.Random(seed)
            for _ in range(args.requests_per_client):
                prompt = " ".join(rng.choice(words) for _ in range(args.prompt_words))
                one_request(args.url, args.model, prompt, args.max_tokens, results)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(c)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        tokens = len(results) * args.max_tokens  # ignore_eos: every request generates max_tokens
        gaps = [g for r in results for g in r["gaps"]]
        ttft = [r["ttft"] for r in results]
        rows.append((c, len(results), tokens / wall, percentile(ttft, 0.5) * 1e3, percentile(ttft, 0.99) * 1e3,
                     percentile(gaps, 0.5) * 1e3, percentile(gaps, 0.99) * 1e3,
                     percentile([r["total"] for r in results], 0.5)))
        print(f"concurrency {c}: {len(results)} requests, {tokens} tokens in {wall:.1f} s", flush=True)
    print("\n| clients | requests | tokens/s | TTFT p50 ms | TTFT p99 ms | inter-token p50 ms | inter-token p99 ms | request p50 s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print("| {} | {} | {:.0f} | {:.1f} | {:.1f} | {:.2f} | {:.2f} | {:.2f} |".format(*r))


if __name__ == "__main__":
    main()
