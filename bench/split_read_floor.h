// A reference floor for split-KV decode attention at a row's size: the same grid reading the
// same bytes with no math, then a dependent merge launch that sums the splits' partials (PDL, as
// the attention's split and merge kernels launch). What the attention pays beyond this figure is
// roughly its own work (the scores, the softmax, the dot products); what the floor pays beyond a
// plain read of the bytes (stream_read.h) is the structure: the second launch, its wait for the
// whole first grid, and its reads of the partials. A plain kernel, not a bound: a better-tuned
// reader can beat it (the attention does at MHA batch 1, 1K; docs/PERF.md session 23). The one-launch form is the floor
// of a merge without a second launch: each CTA adds its partial into the group's fp32 sums with
// fire-and-forget atomics (the unified max makes the merge a plain sum), and the group's last CTA
// to arrive (a counter) reads the sums and writes the rows.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

struct SplitReadFloorShape {
  int groups = 0;          // independent (sequence, KV head) pairs
  int splits = 0;          // CTAs per group, each reading a near-equal contiguous share of the bytes
  int rows_per_group = 0;  // output rows of 128 floats per group (query heads per KV head)
};

// Device buffers: partials [groups * splits][rows_per_group][128] fp32, out [groups *
// rows_per_group][128] fp32, the one-launch form's sums [groups * rows_per_group][128] fp32 and
// arrival counters [groups] int32. Sized by split_read_floor_workspace_bytes(); zero it once
// before the first call (each one-launch call leaves the sums and counters zero again).
size_t split_read_floor_workspace_bytes(const SplitReadFloorShape& shape);

// Phase 1: CTA (group g, split s) reads its share of data[0, bytes) (bytes a multiple of 16, data
// 16-byte aligned) and writes a partial; phase 2 waits for phase 1 and sums each row's partials.
// workspace: split_read_floor_workspace_bytes(shape) bytes. Enqueues both launches on stream, or
// with one_launch the single launch that merges by atomics.
cudaError_t split_read_floor(const void* data, size_t bytes, const SplitReadFloorShape& shape, void* workspace,
                             bool one_launch, cudaStream_t stream);
