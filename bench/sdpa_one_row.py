#!/usr/bin/env python3
"""One decode row of torch SDPA (fp16, one query token per sequence) for a profiler, at the shape
bench_attention's --only takes: BATCH,CONTEXT,KV_HEADS[,Q_HEADS] (head_dim 128). Three warm-up
calls run first; the one call after them runs between cudaProfilerStart and cudaProfilerStop, so
`ncu --profile-from-start off` sees only its kernels (tools/device_sdpa_ncu.sh)."""
import sys

import torch
import torch.nn.functional as F


def parse_row(text):
    fields = [int(x) for x in text.split(",")]
    if len(fields) not in (3, 4) or min(fields) <= 0:
        sys.exit(f"sdpa_one_row: expected BATCH,CONTEXT,KV_HEADS[,Q_HEADS], got {text!r}")
    batch, context, kv_heads = fields[:3]
    q_heads = fields[3] if len(fields) == 4 else 32
    if q_heads % kv_heads != 0:
        sys.exit(f"sdpa_one_row: {q_heads} query heads are not a multiple of {kv_heads} KV heads")
    return batch, context, kv_heads, q_heads


def main():
    batch, context, kv_heads, q_heads = parse_row(sys.argv[1] if len(sys.argv) > 1 else "16,32768,8")
    head_dim = 128
    q = torch.randn(batch, q_heads, 1, head_dim, device="cuda", dtype=torch.float16)
    k = torch.randn(batch, kv_heads, context, head_dim, device="cuda", dtype=torch.float16)
    v = torch.randn_like(k)
    gqa = kv_heads != q_heads
    for _ in range(3):
        F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    print(f"sdpa_one_row: batch {batch}, context {context}, {kv_heads} KV heads, {q_heads} query heads: "
          f"{2 * k.numel() * k.element_size() / 1e6:.1f} MB of K and V")


if __name__ == "__main__":
    main()
