// Attention benchmark. Decode: the split-KV asynchronized-softmax kernel at batch 1/16/64 and
// context 1K..32K, head_dim 128, 32 query heads with 32 and 8 KV heads. Prints µs (single calls
// between events with a spin kernel queued ahead, and "b2b": calls queued back to back as in a
// decode step), GB/s of KV read,
// % of the 3.0 TB/s read ceiling, "read": a plain streaming read of the row's KV bytes, alone
// and queued back to back (bench/stream_read.h: the read ceiling at the row's own size, as
// bench_linear has per shape; rows larger than one pool half print "-"), "floor b2b %": the
// row's split grid reading its bytes with no math, then a dependent launch summing the splits
// (bench/split_read_floor.h: what the split-KV structure with a merge launch costs with a plain
// kernel, a reference rather than a bound; rows of one split print "-"), "one-launch floor": the
// same with the merge done by atomics in the one launch, and the torch SDPA time measured on the
// same machine
// (bench/attention_sdpa_peer.py writes it; pass --peer FILE). KV blocks rotate through a pool
// larger than L2, so HBM serves every read. Also times the forced fallback. Prefill: one causal
// sequence of 1K..8K tokens (fp16, and bf16 from 4K), TFLOP/s against SDPA with is_causal.
// Usage: bench_attention [--peer FILE] [--decode-only] [--contiguous-kv] [--timeline]
//                        [--only BATCH,CONTEXT,KV_HEADS[,Q_HEADS]]
//   --decode-only: no prefill rows (a shorter A/B run); --only: that one decode row (for ncu; any
//   batch, a context that is a multiple of the 16-slot cache block, and any KV heads dividing the
//   query heads, 32 unless named: batch 128 x 1 KV head x 4 query heads launches the grid of batch
//   16 x 8 x 32 over one contiguous 4 KB run per cache block and head, a layout diagnostic);
//   --contiguous-kv: each sequence's cache blocks consecutive in the pool (as SDPA's [B, H, S, D]
//   tensors are), instead of shuffled over it (a paged cache's worst case, the default);
//   --timeline: per decode row, where a call's time goes when calls run back to back: each
//   kernel's duration and what its end adds after the previous kernel's (CUPTI's records; a
//   build without CUPTI says so).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/kernel_timeline.h"
#include "bench_common.h"
#include "gpu_spin.h"
#include "random_fill.h"
#include "split_read_floor.h"
#include "stream_read.h"

namespace {

using fdpp::cuda::AttentionParams;

constexpr double kCeiling = fdpp::bench::kReadCeiling;
constexpr int kBlock = 16;

struct Row {
  int batch, context, hkv;
  double us, gbps, sdpa_us, b2b_us;
  double read_us, read_b2b_us;  // a plain read of the row's KV bytes, alone and back to back (0: larger than the K pool)
  double floor_b2b_us;  // split_read_floor at the row's split grid, back to back (0: one split or too large)
  double floor_one_b2b_us;  // the same in one launch, merged by atomics
  int splits;  // KV splits per (token, KV head): the grid is splits x KV heads x batch blocks
};

// A spin kernel queued ahead of each timed launch (bench_linear does the same): the GPU reaches
// the start event only after the host has enqueued the launch, so the figure is the kernels' time,
// not the host's launch cost (which a decode step's CUDA graph does not pay either).
constexpr int kSpinUs = 30;

// µs between two events recorded on `stream` around enqueue(), which queues work and returns
// its Status (a failure ends the benchmark with its message).
template <typename Enqueue>
double timed_us(cudaStream_t stream, Enqueue&& enqueue) {
  cudaEvent_t a, b;
  BENCH_CHECK(cudaEventCreate(&a));
  BENCH_CHECK(cudaEventCreate(&b));
  BENCH_CHECK(cudaEventRecord(a, stream));
  const fdpp::Status st = enqueue();
  BENCH_CHECK(cudaEventRecord(b, stream));
  BENCH_CHECK(cudaEventSynchronize(b));
  if (!st.is_ok()) {
    fmt::print(stderr, "{}\n", st.message());
    std::exit(1);
  }
  float ms = 0;
  BENCH_CHECK(cudaEventElapsedTime(&ms, a, b));
  BENCH_CHECK(cudaEventDestroy(a));
  BENCH_CHECK(cudaEventDestroy(b));
  return ms * 1e3;
}

// Median µs of `iters` launches after 3 warm-up ones, each timed alone (on the legacy stream,
// behind a spin kernel); launch(i) enqueues run i and returns its Status.
template <typename Launch>
double median_launch_us(int iters, Launch&& launch) {
  std::vector<double> times;
  for (int i = 0; i < iters + 3; ++i) {
    gpu_spin(nullptr, kSpinUs);
    const double us = timed_us(nullptr, [&] { return launch(i); });
    if (i >= 3) times.push_back(us);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// A bench kernel's launch error as the Status the timing helpers expect (ok for cudaSuccess).
fdpp::Status as_status(cudaError_t err, const char* what) {
  return err == cudaSuccess ? fdpp::Status::ok()
                            : fdpp::Status(fdpp::ErrorCode::kInternal, fmt::format("{}: {}", what, cudaGetErrorString(err)));
}

// µs per launch of `iters` launches queued back to back on `stream` (after 3 warm-up ones): what
// a decode step's CUDA graph sees, where each launch overlaps the previous one's tail through
// programmatic dependent launch (backend/cuda/launch.cuh).
template <typename Launch>
double back_to_back_us(cudaStream_t stream, int iters, Launch&& launch) {
  for (int i = 0; i < 3; ++i) (void)launch(i, stream);  // a failure shows in the timed run
  return timed_us(stream, [&] {
           fdpp::Status st = fdpp::Status::ok();
           for (int i = 0; i < iters && st.is_ok(); ++i) st = launch(i, stream);
           return st;
         }) /
         iters;
}

// Device workspace for p.plan and a zeroed fallback-row counter, attached to p (freed by the
// caller through p.workspace and p.fallback_rows).
template <typename T>
void attach_workspace(AttentionParams<T>& p) {
  BENCH_CHECK(cudaMalloc(&p.workspace, p.plan.workspace_bytes));
  BENCH_CHECK(cudaMalloc(&p.fallback_rows, 8));
  BENCH_CHECK(cudaMemset(p.fallback_rows, 0, 8));
}

double time_attention(AttentionParams<__half>& p, const std::vector<int32_t*>& tables, int iters) {
  return median_launch_us(iters, [&](int i) {
    p.slots.block_tables = tables[static_cast<size_t>(i) % tables.size()];
    return fdpp::cuda::launch_attention(p, nullptr);
  });
}

double time_attention_back_to_back(AttentionParams<__half> p, const std::vector<int32_t*>& tables,
                                   cudaStream_t stream, int iters) {
  return back_to_back_us(stream, iters, [&](int i, cudaStream_t s) {
    p.slots.block_tables = tables[static_cast<size_t>(i) % tables.size()];
    return fdpp::cuda::launch_attention(p, s);
  });
}

// One line per decode row: the kernels of `iters` calls queued back to back, as CUPTI saw them
// (backend/cuda/kernel_timeline.h), summarised per kernel of a call (core/kernel_spans.h).
void print_timeline(const std::string& label, AttentionParams<__half> p, const std::vector<int32_t*>& tables,
                    cudaStream_t stream, int iters) {
  constexpr int kWarmupCalls = 5;
  std::string why_not;
  if (!fdpp::cuda::start_kernel_records(&why_not)) {
    fmt::print("# timeline {}: not recorded ({})\n", label, why_not);
    return;
  }
  // The calls queue behind a spin, so that the GPU runs them back to back whatever the host's
  // launch rate; the spin's own record is dropped.
  gpu_spin(stream, 2000);
  fdpp::Status st = fdpp::Status::ok();
  for (int i = 0; i < kWarmupCalls + iters && st.is_ok(); ++i) {
    p.slots.block_tables = tables[static_cast<size_t>(i) % tables.size()];
    st = fdpp::cuda::launch_attention(p, stream);
  }
  std::vector<fdpp::KernelSpan> spans = fdpp::cuda::stop_kernel_records();
  std::erase_if(spans, [](const fdpp::KernelSpan& s) {
    return s.host_call || fdpp::short_kernel_name(s.name) == "spin_kernel";  // the call's kernels only
  });
  if (!st.is_ok()) {
    fmt::print(stderr, "bench_attention: {}\n", st.message());
    std::exit(1);
  }
  const fdpp::CallTimeline calls = fdpp::summarize_calls(spans, kWarmupCalls);
  if (calls.calls == 0) {
    fmt::print("# timeline {}: {} kernels recorded, no repeating call found\n", label, spans.size());
    return;
  }
  std::string steps;
  for (const auto& step : calls.steps)
    steps += fmt::format("; {} {:.1f} us, ends {:.1f} us after the previous", step.name, step.duration_us,
                         step.after_prev_us);
  fmt::print("# timeline {}: {} calls, period {:.1f} us{}\n", label, calls.calls, calls.period_us, steps);
}

// Median time of the prefill path (tiled kernel + fallback pass) over one causal sequence of T
// tokens. bf16 buffers are filled with the fp16 generator's bits: small finite values, same work.
template <typename T>
double time_prefill(int tokens, int hq, int hkv, int hd, fdpp::cuda::SoftmaxRange range) {
  const int blocks = (tokens + kBlock - 1) / kBlock;
  T *k = nullptr, *v = nullptr, *q = nullptr, *out = nullptr;
  const size_t kv_elems = static_cast<size_t>(blocks) * kBlock * hkv * hd, q_elems = static_cast<size_t>(tokens) * hq * hd;
  BENCH_CHECK(cudaMalloc(&k, kv_elems * sizeof(T)));
  BENCH_CHECK(cudaMalloc(&v, kv_elems * sizeof(T)));
  BENCH_CHECK(cudaMalloc(&q, q_elems * sizeof(T)));
  BENCH_CHECK(cudaMalloc(&out, q_elems * sizeof(T)));
  fill_random_half(k, kv_elems, 11);
  fill_random_half(v, kv_elems, 12);
  fill_random_half(q, q_elems, 13);
  std::vector<int32_t> positions(static_cast<size_t>(tokens)), seqs(static_cast<size_t>(tokens), 0),
      table(static_cast<size_t>(blocks)), tiles;
  std::iota(positions.begin(), positions.end(), 0);
  std::iota(table.begin(), table.end(), 0);
  for (int i = 0; i < tokens; i += fdpp::cuda::kPrefillTileRows) {
    tiles.push_back(i);
    tiles.push_back(std::min(fdpp::cuda::kPrefillTileRows, tokens - i));
  }
  auto upload = [](const std::vector<int32_t>& h) {
    int32_t* d = nullptr;
    BENCH_CHECK(cudaMalloc(&d, h.size() * 4));
    BENCH_CHECK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    return d;
  };
  int32_t *d_pos = upload(positions), *d_seq = upload(seqs), *d_table = upload(table), *d_tiles = upload(tiles);
  AttentionParams<T> p;
  p.q = q;
  p.out = out;
  p.kv = {k, v, blocks, kBlock, hkv, hd};
  p.slots = {d_pos, d_seq, d_table, blocks, tokens};
  p.num_q_heads = hq;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.range = range;
  p.plan = fdpp::cuda::plan_prefill_attention(tokens, hq, hkv, hd);
  p.tiles = d_tiles;
  p.num_tiles = static_cast<int32_t>(tiles.size() / 2);
  attach_workspace(p);
  const double us = median_launch_us(20, [&](int) { return fdpp::cuda::launch_prefill_attention(p, nullptr); });
  for (void* ptr : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(q), static_cast<void*>(out),
                    static_cast<void*>(d_pos), static_cast<void*>(d_seq), static_cast<void*>(d_table),
                    static_cast<void*>(d_tiles), p.workspace, static_cast<void*>(p.fallback_rows)})
    cudaFree(ptr);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, double> peer;
  bool decode_only = false, contiguous_kv = false, timeline = false;
  int only[4] = {0, 0, 0, 32};  // batch, context, KV heads, query heads; zeros: every row
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--decode-only") decode_only = true;
    if (arg == "--contiguous-kv") contiguous_kv = true;
    if (arg == "--timeline") timeline = true;
    if (arg == "--only") {
      const int fields = i + 1 < argc ? std::sscanf(argv[i + 1], "%d,%d,%d,%d", &only[0], &only[1], &only[2], &only[3]) : 0;
      if (fields != 3 && fields != 4) {
        fmt::print(stderr, "bench_attention: --only expects BATCH,CONTEXT,KV_HEADS[,Q_HEADS], e.g. 16,32768,8\n");
        return 2;
      }
      if (only[0] <= 0 || only[1] <= 0 || only[1] % kBlock != 0 || only[2] <= 0 || only[3] <= 0 ||
          only[3] % only[2] != 0 || only[3] / only[2] > 8) {
        fmt::print(stderr, "bench_attention: --only {}: need batch > 0, a context that is a positive multiple of {}, "
                           "and KV heads dividing the query heads with a group of at most 8\n", argv[i + 1], kBlock);
        return 2;
      }
      decode_only = true;
    }
  }
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--peer") {
      std::ifstream f(argv[i + 1]);
      const nlohmann::json j = nlohmann::json::parse(f);
      for (auto it = j.begin(); it != j.end(); ++it) peer[it.key()] = it.value().get<double>();
    }
  int sms = 0;
  BENCH_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop{};
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int hq = 32, hd = 128;
  const int decode_hq = only[0] != 0 ? only[3] : hq;
  gpu_spin(nullptr, 300000);  // 0.3 s of load first: the first rows must not time the clock ramp-up
  BENCH_CHECK(cudaDeviceSynchronize());
  cudaStream_t stream = nullptr;  // a created stream: the back-to-back runs use PDL (not on the legacy stream)
  BENCH_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // The KV pool: 8 GiB per K and V, far beyond L2, shared by every configuration.
  const size_t pool_bytes = size_t{8} << 30;
  float* read_sink = nullptr;  // stream_read's [1] output
  BENCH_CHECK(cudaMalloc(&read_sink, sizeof(float)));
  std::vector<Row> rows;
  fmt::print("# decode attention, fp16, head_dim {}, {} query heads, {} ({} SMs), cache blocks {}\n", hd, decode_hq,
             prop.name, sms, contiguous_kv ? "consecutive per sequence" : "shuffled over the pool");
  for (int hkv : only[0] != 0 ? std::vector<int>{only[2]} : std::vector<int>{32, 8}) {
    const size_t block_bytes = size_t{kBlock} * hkv * hd * sizeof(__half);
    const int pool_blocks = static_cast<int>(pool_bytes / block_bytes);
    __half *k = nullptr, *v = nullptr;
    BENCH_CHECK(cudaMalloc(&k, pool_bytes));
    BENCH_CHECK(cudaMalloc(&v, pool_bytes));
    fill_random_half(k, pool_bytes / 2, 1);
    fill_random_half(v, pool_bytes / 2, 2);
    // --only may name any batch and context (a diagnostic row: batch 33 x 8 KV heads fills one
    // wave of the tensor-core kernel exactly); the table's rows otherwise.
    const std::vector<int> batches = only[0] != 0 ? std::vector<int>{only[0]} : std::vector<int>{1, 16, 64};
    const std::vector<int> contexts =
        only[0] != 0 ? std::vector<int>{only[1]} : std::vector<int>{1024, 4096, 16384, 32768};
    for (int batch : batches) {
      for (int context : contexts) {
        const int blocks_per_seq = context / kBlock;
        const long need = static_cast<long>(batch) * blocks_per_seq;
        if (need > pool_blocks) continue;  // does not fit the pool (batch 64 x 32K x 32 heads)
        // Several disjoint table sets so consecutive iterations read different memory.
        const int sets = static_cast<int>(std::max<long>(1, std::min<long>(8, pool_blocks / need)));
        std::vector<int32_t*> tables;
        std::mt19937 rng(7);
        std::vector<int32_t> all(static_cast<size_t>(pool_blocks));
        std::iota(all.begin(), all.end(), 0);
        if (!contiguous_kv) std::shuffle(all.begin(), all.end(), rng);
        for (int s = 0; s < sets; ++s) {
          int32_t* d = nullptr;
          BENCH_CHECK(cudaMalloc(&d, static_cast<size_t>(need) * 4));
          BENCH_CHECK(cudaMemcpy(d, all.data() + static_cast<size_t>(s) * need, static_cast<size_t>(need) * 4,
                           cudaMemcpyHostToDevice));
          tables.push_back(d);
        }
        std::vector<int32_t> positions(static_cast<size_t>(batch), context - 1), seqs(static_cast<size_t>(batch));
        std::iota(seqs.begin(), seqs.end(), 0);
        int32_t *d_pos = nullptr, *d_seq = nullptr;
        BENCH_CHECK(cudaMalloc(&d_pos, static_cast<size_t>(batch) * 4));
        BENCH_CHECK(cudaMalloc(&d_seq, static_cast<size_t>(batch) * 4));
        BENCH_CHECK(cudaMemcpy(d_pos, positions.data(), static_cast<size_t>(batch) * 4, cudaMemcpyHostToDevice));
        BENCH_CHECK(cudaMemcpy(d_seq, seqs.data(), static_cast<size_t>(batch) * 4, cudaMemcpyHostToDevice));
        __half *q = nullptr, *out = nullptr;
        BENCH_CHECK(cudaMalloc(&q, static_cast<size_t>(batch) * decode_hq * hd * 2));
        BENCH_CHECK(cudaMalloc(&out, static_cast<size_t>(batch) * decode_hq * hd * 2));
        fill_random_half(q, static_cast<size_t>(batch) * decode_hq * hd, 3);

        AttentionParams<__half> p;
        p.q = q;
        p.out = out;
        p.kv = {k, v, pool_blocks, kBlock, hkv, hd};
        p.slots = {d_pos, d_seq, tables[0], blocks_per_seq, batch};
        p.num_q_heads = decode_hq;
        p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        p.plan = fdpp::cuda::plan_attention(batch, decode_hq, hkv, hd, context, sms);
        attach_workspace(p);
        const double us = time_attention(p, tables, 50);
        const double b2b_us = time_attention_back_to_back(p, tables, stream, 50);
        if (timeline)
          print_timeline(fmt::format("b{} c{} kv{} (b2b {:.1f} us)", batch, context, hkv, b2b_us), p, tables, stream, 50);
        const double bytes = 2.0 * batch * context * hkv * hd * 2;
        double read_us = 0, read_b2b_us = 0;
        if (static_cast<size_t>(bytes) * 2 <= pool_bytes) {
          // Read i starts at a rotating 256-byte-aligned offset of the K pool, so that L2 does not serve it.
          const size_t row_bytes = static_cast<size_t>(bytes), span = pool_bytes - row_bytes;
          const auto read = [&](int i, cudaStream_t s) {
            const size_t offset = (static_cast<size_t>(i) * (row_bytes + 4096) % span) & ~size_t{255};
            return as_status(stream_read(reinterpret_cast<const char*>(k) + offset, row_bytes, read_sink, s), "stream_read");
          };
          read_us = median_launch_us(50, [&](int i) { return read(i, nullptr); });
          read_b2b_us = back_to_back_us(stream, 50, read);
        }
        double floor_b2b_us = 0, floor_one_b2b_us = 0;
        if (read_b2b_us > 0 && p.plan.num_splits > 1) {
          const SplitReadFloorShape shape{batch * hkv, p.plan.num_splits, decode_hq / hkv};
          void* floor_workspace = nullptr;
          BENCH_CHECK(cudaMalloc(&floor_workspace, split_read_floor_workspace_bytes(shape)));
          BENCH_CHECK(cudaMemset(floor_workspace, 0, split_read_floor_workspace_bytes(shape)));
          const size_t row_bytes = static_cast<size_t>(bytes), span = pool_bytes - row_bytes;
          for (bool one_launch : {false, true}) {
            (one_launch ? floor_one_b2b_us : floor_b2b_us) = back_to_back_us(stream, 50, [&](int i, cudaStream_t s) {
              const size_t offset = (static_cast<size_t>(i) * (row_bytes + 4096) % span) & ~size_t{255};
              return as_status(split_read_floor(reinterpret_cast<const char*>(k) + offset, row_bytes, shape,
                                                floor_workspace, one_launch, s),
                               "split_read_floor");
            });
          }
          cudaFree(floor_workspace);
        }
        const std::string key = fmt::format("b{}_c{}_kv{}", batch, context, hkv);
        rows.push_back(
            {batch, context, hkv, us, bytes / (us * 1e-6) / 1e9, peer.count(key) ? peer[key] : 0.0, b2b_us,
             read_us, read_b2b_us, floor_b2b_us, floor_one_b2b_us, p.plan.num_splits});
        if (batch == 1 && (context == 4096 || context == 32768)) {
          AttentionParams<__half> forced = p;
          forced.range = {0.0f, -0.01f, 0.01f};  // every row out of range: all recomputed
          const double fus = time_attention(forced, tables, 10);
          fmt::print("# fallback forced on every row, batch 1, context {}, {} KV heads: {:.1f} us ({:.1f}x the fast path, splits {})\n",
                     context, hkv, fus, fus / us, p.plan.num_splits);
        }
        for (int32_t* t : tables) cudaFree(t);
        cudaFree(d_pos);
        cudaFree(d_seq);
        cudaFree(q);
        cudaFree(out);
        cudaFree(p.workspace);
        cudaFree(p.fallback_rows);
      }
    }
    cudaFree(k);
    cudaFree(v);
  }
  // Prefill: one sequence of T prompt tokens (causal), through the prefill kernel (and its
  // fallback pass, which finds no row to recompute on these inputs).
  struct PrefillRow { const char* dtype; int tokens, hkv; double us, tflops, sdpa_us; };
  std::vector<PrefillRow> prefill_rows;
  for (int hkv : {32, 8}) {
    if (decode_only) break;
    for (int T : {1024, 2048, 4096, 8192}) {
      const double flops = 4.0 * hq * hd * (static_cast<double>(T) * (T + 1) / 2);  // QK^T and PV, causal
      const double us = time_prefill<__half>(T, hq, hkv, hd, {});
      const std::string key = fmt::format("prefill_t{}_kv{}", T, hkv);
      prefill_rows.push_back({"fp16", T, hkv, us, flops / (us * 1e-6) / 1e12, peer.count(key) ? peer[key] : 0.0});
      if (T >= 4096) {
        const double bus = time_prefill<__nv_bfloat16>(T, hq, hkv, hd, {});
        const std::string bkey = fmt::format("prefill_bf16_t{}_kv{}", T, hkv);
        prefill_rows.push_back({"bf16", T, hkv, bus, flops / (bus * 1e-6) / 1e12, peer.count(bkey) ? peer[bkey] : 0.0});
      }
      if (T == 1024 && hkv == 8) {
        const double fus = time_prefill<__half>(T, hq, hkv, hd, {0.0f, -0.01f, 0.01f});
        fmt::print("# prefill fallback forced on every row, {} tokens, {} KV heads: {:.1f} us ({:.1f}x the fast path)\n",
                   T, hkv, fus, fus / us);
      }
    }
  }

  fmt::print("\n| batch | context | KV heads | fdpp µs | KV GB/s | % of 3.0 TB/s | torch SDPA µs | speed-up | "
             "b2b µs | b2b % | read alone µs, % | read b2b % | floor b2b µs, % | one-launch floor b2b µs, % | splits |\n");
  fmt::print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    const double bytes = 2.0 * r.batch * r.context * r.hkv * hd * 2;
    const auto floor_cell = [&](double us) {
      return us > 0 ? fmt::format("{:.1f}, {:.1f}%", us, 100.0 * bytes / (us * 1e-6) / kCeiling) : std::string("-");
    };
    fmt::print("| {} | {} | {} | {:.1f} | {:.0f} | {:.1f}% | {} | {} | {:.1f} | {:.1f}% | {} | {} | {} | {} | {} |\n", r.batch, r.context, r.hkv,
               r.us, r.gbps, 100.0 * r.gbps * 1e9 / kCeiling,
               r.sdpa_us > 0 ? fmt::format("{:.1f}", r.sdpa_us) : "-",
               r.sdpa_us > 0 ? fmt::format("{:.2f}x", r.sdpa_us / r.us) : "-", r.b2b_us,
               100.0 * bytes / (r.b2b_us * 1e-6) / kCeiling,
               floor_cell(r.read_us),
               r.read_b2b_us > 0 ? fmt::format("{:.1f}%", 100.0 * bytes / (r.read_b2b_us * 1e-6) / kCeiling) : "-",
               floor_cell(r.floor_b2b_us), floor_cell(r.floor_one_b2b_us),
               r.splits);
  }
  if (decode_only) {
    cudaFree(read_sink);
    cudaStreamDestroy(stream);
    return 0;
  }
  fmt::print("\n# prefill attention, causal, one sequence, head_dim {}, {} query heads\n", hd, hq);
  fmt::print("| dtype | tokens | KV heads | fdpp µs | TFLOP/s | torch SDPA µs | speed-up |\n"
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const PrefillRow& r : prefill_rows)
    fmt::print("| {} | {} | {} | {:.1f} | {:.1f} | {} | {} |\n", r.dtype, r.tokens, r.hkv, r.us, r.tflops,
               r.sdpa_us > 0 ? fmt::format("{:.1f}", r.sdpa_us) : "-",
               r.sdpa_us > 0 ? fmt::format("{:.2f}x", r.sdpa_us / r.us) : "-");
  cudaFree(read_sink);
  cudaStreamDestroy(stream);
  return 0;
}
