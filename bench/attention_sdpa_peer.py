#!/usr/bin/env python3
"""The peer for bench_attention: torch SDPA decode (q_len 1) at the same shapes, fp16, on the GPU
machine, rotating K/V copies so that L2 does not serve them; and causal prefill of one sequence
(fp16 1K..8K, bf16 4K and 8K). Writes {"b1_c1024_kv32": us, ..., "prefill_t1024_kv32": us,
"prefill_bf16_t4096_kv8": us, ...}."""
import json
import sys

import torch
import torch.nn.functional as F



def median_us(iters, run):
    """Median µs of `iters` calls of run(i) after 3 warm-up ones, each timed alone between events."""
    times = []
    for i in range(iters + 3):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        run(i)
        e.record()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(s.elapsed_time(e) * 1e3)
    times.sort()
    return times[len(times) // 2]


out_path = sys.argv[1]
hq, hd = 32, 128
results = {}
for hkv in (32, 8):
    for batch in (1, 16, 64):
        for ctx in (1024, 4096, 16384, 32768):
            kv_bytes = 2 * batch * ctx * hkv * hd * 2
            if kv_bytes > 24 * 2**30:
                continue
            copies = max(1, min(8, (256 * 2**20) // kv_bytes + 1))
            q = torch.randn(batch, hq, 1, hd, device="cuda", dtype=torch.float16)
            kvs = [(torch.randn(batch, hkv, ctx, hd, device="cuda", dtype=torch.float16),
                    torch.randn(batch, hkv, ctx, hd, device="cuda", dtype=torch.float16)) for _ in range(copies)]
            results[f"b{batch}_c{ctx}_kv{hkv}"] = median_us(50, lambda i: F.scaled_dot_product_attention(
                q, *kvs[i % copies], enable_gqa=(hkv != hq)))
            del kvs
            torch.cuda.empty_cache()
prefill_shapes = [(dt, hkv, t) for hkv in (32, 8) for t in (1024, 2048, 4096, 8192) for dt in ("", "bf16_")
                  if dt == "" or t >= 4096]
for dt, hkv, t in prefill_shapes:  # prefill: one causal sequence of t tokens
    dtype = torch.bfloat16 if dt else torch.float16
    q = torch.randn(1, hq, t, hd, device="cuda", dtype=dtype)
    k = torch.randn(1, hkv, t, hd, device="cuda", dtype=dtype)
    v = torch.randn(1, hkv, t, hd, device="cuda", dtype=dtype)
    results[f"prefill_{dt}t{t}_kv{hkv}"] = median_us(20, lambda i: F.scaled_dot_product_attention(
        q, k, v, is_causal=True, enable_gqa=(hkv != hq)))
json.dump(results, open(out_path, "w"), indent=1)
print(f"torch {torch.__version__}: {len(results)} SDPA shapes timed")
