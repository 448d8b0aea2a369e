#!/usr/bin/env python3
"""Per-kernel time of one decode step from an Nsight Compute CSV (ncu --csv --metrics
gpu__time_duration.sum) of `fdpp bench` run with FDPP_CUDA_GRAPHS=0.

The decode steps start at the embedding gather that precedes the first decode-attention kernel
(split_kv*); the step count is the number of decode-attention launches over the layer count.
Prints a table of kernels by total time per step, largest first.
Usage: kernel_breakdown.py NCU.csv --layers 32"""
import argparse
import collections
import csv
import re
import sys


def short_name(name):
    name = re.sub(r"\(.*$", "", name)  # drop the argument list
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"^fdpp::(cuda::)?(\(anonymous namespace\)::)?", "", name)
    return name[:90]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--layers", type=int, required=True)
    a = ap.parse_args()
    kernels = []  # (name, microseconds)
    with open(a.csv) as f:
        lines = [l for l in f if l.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "nsecond")
        us = value / 1000.0 if unit.startswith("n") else value if unit.startswith("u") else value * 1000.0
        kernels.append((row["Kernel Name"], us))
    first_decode = next((i for i, (n, _) in enumerate(kernels) if "split_kv" in n), None)
    if first_decode is None:
        sys.exit("no decode-attention kernel (split_kv*) in the profile")
    start = max((i for i in range(first_decode) if "gather_rows" in kernels[i][0]), default=0)
    decode = kernels[start:]
    steps = sum(1 for n, _ in decode if "split_kv" in n and "merge" not in n) / a.layers
    totals = collections.defaultdict(float)
    calls = collections.Counter()
    for n, us in decode:
        totals[short_name(n)] += us
        calls[short_name(n)] += 1
    step_us = sum(totals.values()) / steps
    print(f"# {len(decode)} kernels over {steps:g} decode steps: {step_us / 1000:.3f} ms of kernel time per step")
    print("| kernel | launches/step | µs/step | share |")
    print("| --- | ---: | ---: | ---: |")
    for n, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {n} | {calls[n] / steps:g} | {t / steps:.1f} | {100 * t / steps / step_us:.1f}% |")


if __name__ == "__main__":
    main()
