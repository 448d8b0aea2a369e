// GEMV on CUDA cores for M in 1..8 (see gemv.cuh): out [M, N] = x [M, K] . w [N, K]^T + ...
//
// Dataflow. Block b owns rows [b * R, b * R + R) of w (R = GemvTraits::kRowsFor<M>) and its 128
// threads split K: thread t takes 16-byte pieces t, t + 128, t + 256, ... of each of the R rows,
// so each warp reads 512 contiguous bytes of a row per load instruction. Weight loads bypass L1
// (ld.global.nc.L1::no_allocate: every byte is read once) and kUnroll of them per row are issued
// before any is used. x [M, K] is tiny (<= 8 x 14336 x 2 = 229 KB) and read through L1 with
// ordinary cached loads: every block of an SM walks the same x, so L2 serves each SM's copy
// about once and the weights keep L1 out of their way. Shared memory would need a copy of x per
// block (2048 blocks x 64 KB at [4096, 4096], M = 8: four times the weight bytes from L2).
// Products accumulate in fp32; a transposing warp reduction (each step halves the values a lane
// holds, R * pow2(M) - 1 shuffles in all instead of 5 per value) leaves one sum per lane; the
// block's warps meet in shared memory and the first R * pow2(M) threads apply bias and residual
// and store, rounding once.
// RMSNorm prologue (M <= 4): each x piece is multiplied by the norm weight's piece (one more L1
// load per x load) and its squares summed; a second small reduction gives each row's 1/rms,
// applied to the sums before the bias. It replaces a norm launch that wrote x back out (a decode
// step of Llama-2-7B had 65, ~3-4 us each).
//
// Predicted bandwidth on the H100 SXM (3.0 TB/s read ceiling, DESIGN.md section 2). The kernel
// moves N*K*2 weight bytes once; x comes from L1/L2 and the output is at most 8 * N * 2 bytes.
//  * In flight (GemvTraits): 64 KB of weight loads per SM at M <= 4, 48 KB at M = 5-6, 32 KB at
//    M = 7-8, when all resident warps are loading: 2-4x the ~17 KB Little's law asks for
//    (3 TB/s x ~0.75 us loaded latency / 132 SMs). So the weight stream should run at ~2.9 TB/s
//    (95%), like a plain read-only copy kernel.
//  * Issue: per weight element, M FMAs + 1 conversion + M / R conversions of x: at M = 8 that is
//    11 instructions, ~70 of the 128 lanes/clk an SM issues at 2.9 TB/s: busy but not bound. L1:
//    (1 + M / R) 512-byte wavefronts per 512 weight bytes, ~12 of every 40 cycles at M = 8.
//  * Fixed cost per launch, not hidden by the stream: launch + first-load latency + the last
//    block's reduction and store, ~2 us when each launch is timed alone with events, ~1 us when
//    launches run back to back (CUDA graph).
// Prediction per launch (bytes / 2.9 TB/s + 2 us):
//   [4096, 4096]   33.6 MB: ~13.6 us, ~2.45 TB/s = ~82% (the fixed cost is 15% of so short a kernel;
//                  ~88% back to back)
//   [12288, 4096] 100.7 MB: ~36.7 us, ~2.74 TB/s = ~91%
//   [22016, 4096] 180.4 MB: ~64.2 us, ~2.81 TB/s = ~94%
//   [4096, 11008]  90.2 MB: ~33.1 us, ~2.72 TB/s = ~91%
//   [128256, 4096] 1.05 GB: ~364 us, ~2.89 TB/s = ~96%
// M = 1..4 should sit on these figures; M = 5..8 a few percent lower (issue pressure above).
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/gemm/gemv.cuh"
#include "backend/cuda/gemm/gemv_traits.h"
#include "backend/cuda/launch.cuh"

namespace fdpp::cuda {
namespace {

constexpr int pow2_ceil(int v) {
  int p = 1;
  while (p < v) p *= 2;
  return p;
}

template <typename T> __device__ __forceinline__ float2 to_float2(uint32_t bits);
template <> __device__ __forceinline__ float2 to_float2<__half>(uint32_t bits) {
  return __half22float2(*reinterpret_cast<const __half2*>(&bits));
}
template <> __device__ __forceinline__ float2 to_float2<__nv_bfloat16>(uint32_t bits) {
  // bf16 -> fp32 is a shift: the low half moves up 16 bits, the high half is masked.
  return make_float2(__uint_as_float(bits << 16), __uint_as_float(bits & 0xffff0000u));
}

template <typename T> __device__ __forceinline__ T from_bits(unsigned short b);
template <> __device__ __forceinline__ __half from_bits<__half>(unsigned short b) { return __ushort_as_half(b); }
template <> __device__ __forceinline__ __nv_bfloat16 from_bits<__nv_bfloat16>(unsigned short b) {
  return __ushort_as_bfloat16(b);
}

// A piece of kVec consecutive elements of a row: 8 (one 16-byte load) on the fast path, 1 on the
// scalar path. load_stream reads weights (read once: no L1 allocation); load_cached reads x
// (read by every block: kept in L1) through the coherent path, not ld.global.nc: under
// programmatic dependent launch the previous kernel writes x while this grid is already
// resident, and the non-coherent cache is not refreshed by the grid-dependency wait (a GEMV
// chain with __ldg read stale x, H100, 2026-12-05).
template <typename T, int kVec> struct Piece;

template <typename T>
struct Piece<T, 8> {
  using Raw = uint4;
  static __device__ __forceinline__ Raw zero() { return make_uint4(0, 0, 0, 0); }
  static __device__ __forceinline__ Raw load_stream(const T* row, int i) {
    Raw r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(reinterpret_cast<const uint4*>(row) + i));
    return r;
  }
  static __device__ __forceinline__ Raw load_cached(const T* row, int i) {
    Raw r;
    asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(reinterpret_cast<const uint4*>(row) + i));
    return r;
  }
  // Elements 2j and 2j + 1 as floats.
  static __device__ __forceinline__ float2 pair(const Raw& r, int j) {
    const uint32_t bits = j == 0 ? r.x : j == 1 ? r.y : j == 2 ? r.z : r.w;
    return to_float2<T>(bits);
  }
};

template <typename T>
struct Piece<T, 1> {
  using Raw = unsigned short;
  static __device__ __forceinline__ Raw zero() { return 0; }
  static __device__ __forceinline__ Raw load_stream(const T* row, int i) {
    Raw r;
    asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];"
                 : "=h"(r)
                 : "l"(reinterpret_cast<const unsigned short*>(row) + i));
    return r;
  }
  static __device__ __forceinline__ Raw load_cached(const T* row, int i) {
    Raw r;
    asm volatile("ld.global.u16 %0, [%1];" : "=h"(r) : "l"(reinterpret_cast<const unsigned short*>(row) + i));
    return r;
  }
  static __device__ __forceinline__ float one(const Raw& r) { return to_float(from_bits<T>(r)); }
};

// c ? a : b, opaque to the optimiser: written as a ternary on two elements of a register array,
// it becomes a select of addresses, which puts the whole array in local memory.
__device__ __forceinline__ float select(bool c, float a, float b) {
  float r;
  asm("{\n\t.reg .pred p;\n\tsetp.ne.u32 p, %3, 0;\n\tselp.f32 %0, %1, %2, p;\n\t}"
      : "=f"(r)
      : "f"(a), "f"(b), "r"(static_cast<unsigned>(c)));
  return r;
}

// Sums v[i] over the 32 lanes of a warp for V (a power of two <= 32) values at once. Each step
// exchanges half of the values a lane still holds: the lane with bit kOff set keeps the upper
// half, its partner the lower. V - 1 shuffles + 5 - log2(V) for the last value. Afterwards lane
// l holds the full sum of value index l / (32 / V) in v[0] (all 32 / V lanes of a group agree).
// Steps are template recursion, not a loop: the inner trip count must be a constant for every
// v[i] to stay in a register.
template <int kHeld, int kOff, int V>
__device__ __forceinline__ void transpose_reduce_steps(float (&v)[V], int lane) {
  if constexpr (kOff > 0) {
    if constexpr (kHeld >= 2) {
      constexpr int kHalf = kHeld / 2;
      const bool upper = (lane & kOff) != 0;
#pragma unroll
      for (int i = 0; i < kHalf; ++i) {
        const float send = select(upper, v[i], v[i + kHalf]);
        const float keep = select(upper, v[i + kHalf], v[i]);
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, kOff);
      }
      transpose_reduce_steps<kHalf, kOff / 2>(v, lane);
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], kOff);
      transpose_reduce_steps<1, kOff / 2>(v, lane);
    }
  }
}

template <int V>
__device__ __forceinline__ float warp_reduce_transpose(float (&v)[V], int lane) {
  static_assert(V >= 1 && V <= 32 && (V & (V - 1)) == 0, "V must be a power of two <= 32");
  transpose_reduce_steps<V, 16>(v, lane);
  return v[0];
}

// Grid: ceil(N / R) blocks of GemvTraits::kThreads. Block b computes out[:, b*R .. b*R + R).
// The rows block b owns: b * R + r, or with the QKV epilogue (kRope, R = 2) the rotation pair
// (i, i + hd / 2) of head b / (hd / 2), i = b % (hd / 2).
template <int R, bool kRope, typename T>
__device__ __forceinline__ int64_t owned_row(const GemvParams<T>& p, int r) {
  if constexpr (kRope) {
    const int half = p.rope.head_dim / 2;
    const int64_t head = blockIdx.x / half, i = blockIdx.x % half;
    return head * p.rope.head_dim + i + r * half;
  } else {
    return int64_t{blockIdx.x} * R + r;
  }
}

// Token m's 1/rms from the warps' sums of squares of x (kNorm), else 1.
template <bool kNorm, int kWarpRows, int kM>
__device__ __forceinline__ float inv_rms(const float (&partial_sq)[kWarpRows][kM], int m, int K, float eps) {
  if constexpr (kNorm) {
    float ss = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpRows; ++w) ss += partial_sq[w][m];
    return rsqrtf(ss / static_cast<float>(K) + eps);
  } else {
    return 1.0f;
  }
}

template <typename T, typename OutT, int M, int kVec, bool kNorm, bool kRope>
__global__ void __launch_bounds__(GemvTraits::kThreads, GemvTraits::kMinBlocksPerSmFor<M>)
gemv_kernel(const GemvParams<T> p) {
  static_assert(!kNorm || (kVec == 8 && M <= kGemvNormMaxM), "the norm prologue is a fast-path variant");
  static_assert(!kRope || (kVec == 8 && GemvTraits::kRowsFor<M> == 2), "the QKV epilogue pairs two rows per block");
  using P = Piece<T, kVec>;
  using Raw = typename P::Raw;
  constexpr int kThreads = GemvTraits::kThreads;
  constexpr int R = GemvTraits::kRowsFor<M>;
  constexpr int U = kVec == 8 ? GemvTraits::kUnrollFor<M> : GemvTraits::kUnrollScalarFor<M>;
  constexpr int Mp = pow2_ceil(M);
  constexpr int V = R * Mp;  // sums per block, index r * Mp + m
  static_assert(V <= 32, "kRows * pow2(M) must fit one value per lane");

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t N = p.N;
  const int K = static_cast<int>(p.K);
  const int pieces = K / kVec;  // per row
  const int64_t n0 = int64_t{blockIdx.x} * R;

  // Rows past N (last block) re-read row N - 1; their sums are never stored.
  const T* wrow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = owned_row<R, kRope>(p, r);
    wrow[r] = p.w + (row < N ? row : N - 1) * K;
  }

  float acc[R][M];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.0f;
  // kNorm: the block's threads see every x piece exactly once, so these add up to each row's
  // sum of squares; the product runs on x * norm_weight and is scaled by 1/rms at the end.
  float sum_sq[M];
#pragma unroll
  for (int m = 0; m < M; ++m) sum_sq[m] = 0.0f;

  // The first step's weight loads go out before the wait for the previous kernel (launch.cuh):
  // weights are constant, so they overlap that kernel's tail; x and the output wait.
  bool waited = false;
  for (int i0 = tid; i0 < pieces; i0 += kThreads * U) {
    // All weight loads of this step first (U * R in flight), predicated on the row's end.
    Raw wr[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = i0 + u * kThreads;
#pragma unroll
      for (int r = 0; r < R; ++r) wr[u][r] = i < pieces ? P::load_stream(wrow[r], i) : P::zero();
    }
    if (!waited) {
      enter_dependent_grid();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = i0 + u * kThreads;
      // The M x pieces (L1 hits); out-of-range pieces are zero in w and x: they add nothing.
      Raw xr[M];
#pragma unroll
      for (int m = 0; m < M; ++m) xr[m] = i < pieces ? P::load_cached(p.x + int64_t{m} * K, i) : P::zero();
      if constexpr (kVec == 8) {
        Raw gr = P::zero();
        if constexpr (kNorm) gr = i < pieces ? P::load_cached(p.norm_weight, i) : P::zero();
        // Two elements at a time: each w and x element is converted once, and only 2 * R weight
        // floats are live (converting whole pieces first would hold 8 * R).
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float2 wf[R];
#pragma unroll
          for (int r = 0; r < R; ++r) wf[r] = P::pair(wr[u][r], j);
#pragma unroll
          for (int m = 0; m < M; ++m) {
            float2 xf = P::pair(xr[m], j);
            if constexpr (kNorm) {
              const float2 gf = P::pair(gr, j);
              sum_sq[m] = fmaf(xf.x, xf.x, fmaf(xf.y, xf.y, sum_sq[m]));
              xf.x *= gf.x;
              xf.y *= gf.y;
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
              acc[r][m] = fmaf(wf[r].x, xf.x, acc[r][m]);
              acc[r][m] = fmaf(wf[r].y, xf.y, acc[r][m]);
            }
          }
        }
      } else {
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const float xf = P::one(xr[m]);
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][m] = fmaf(P::one(wr[u][r]), xf, acc[r][m]);
        }
      }
    }
  }

  if (!waited) enter_dependent_grid();  // a thread with no piece of K

  float v[V];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < Mp; ++m) v[r * Mp + m] = m < M ? acc[r][m < M ? m : M - 1] : 0.0f;  // pad to pow2
  const float warp_sum = warp_reduce_transpose<V>(v, lane);

  __shared__ float partial[GemvTraits::kWarps][V];
  constexpr int kLanesPerValue = 32 / V;
  if (lane % kLanesPerValue == 0) partial[warp][lane / kLanesPerValue] = warp_sum;
  __shared__ float partial_sq[kNorm ? GemvTraits::kWarps : 1][M];
  if constexpr (kNorm) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum_sq[m] += __shfl_xor_sync(0xffffffffu, sum_sq[m], off);
      if (lane == 0) partial_sq[warp][m] = sum_sq[m];
    }
  }
  __syncthreads();
  if constexpr (kRope) {
    // The thread of token m finishes both rows of the pair (the warps' sums in a fixed order, 1/rms,
    // bias) and stores them rotated.
    if (tid < M) {
      const int m = tid;
      const float scale = inv_rms<kNorm>(partial_sq, m, K, p.norm_eps);
      float y[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < GemvTraits::kWarps; ++w) sum += partial[w][r * Mp + m];
        sum *= scale;
        y[r] = p.bias != nullptr ? sum + to_float(p.bias[owned_row<R, kRope>(p, r)]) : sum;
      }
      store_rope_pair(p.rope, m, owned_row<R, kRope>(p, 0), y[0], y[1]);
    }
    return;
  }
  // The gated epilogue pairs rows n and n + 1 (R is even, so a pair never straddles two blocks):
  // the thread of the even row finishes both and stores one value.
  static_assert(R % 2 == 0, "the gated epilogue pairs rows inside a block");
  if (tid < V && (!p.gated_silu || (tid / Mp) % 2 == 0)) {
    const int r = tid / Mp, m = tid % Mp;
    const int64_t n = n0 + r;
    if (m < M && n < N) {
      const float scale = inv_rms<kNorm>(partial_sq, m, K, p.norm_eps);
      // Row r + dr's finished value for token m: the warps' sums in a fixed order, 1/rms, bias.
      auto finished = [&](int dr) {
        float y = 0.0f;
#pragma unroll
        for (int w = 0; w < GemvTraits::kWarps; ++w) y += partial[w][tid + dr * Mp];
        y *= scale;
        return p.bias != nullptr ? y + to_float(p.bias[n + dr]) : y;
      };
      float y = finished(0);
      if (p.gated_silu) {
        store_gated_output(p, m, n, y, finished(1));
        return;
      }
      const int64_t o = int64_t{m} * N + n;
      if (p.residual != nullptr) y += to_float(p.residual[o]);  // may alias out: read before the store
      if constexpr (std::is_same_v<OutT, float>) {
        p.out_f32[o] = y;
      } else {
        p.out[o] = from_float<T>(y);
      }
    }
  }
}

template <typename T, typename OutT, int M, int kVec, bool kNorm = false, bool kRope = false>
Status launch_variant(const GemvParams<T>& p, cudaStream_t stream) {
  auto* kernel = gemv_kernel<T, OutT, M, kVec, kNorm, kRope>;
  // Prefer the largest L1 (x lives there): once per instantiation, thread-safe static init.
  static const bool carveout_set = [kernel] {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxL1) != cudaSuccess) {
      (void)cudaGetLastError();  // a hint only: clear the error, launch anyway
      return false;
    }
    return true;
  }();
  (void)carveout_set;
  constexpr int R = GemvTraits::kRowsFor<M>;
  return launch_status(launch_kernel(kernel, dim3(ceil_div(p.N, R)), dim3(GemvTraits::kThreads), 0, stream, 1, p),
                       "gemv");
}

template <typename T, int M>
Status launch_for_m(const GemvParams<T>& p, cudaStream_t stream, bool vec, bool f32) {
  if constexpr (M <= kGemvNormMaxM) {
    if (p.rope.q_out != nullptr)
      return p.norm_weight != nullptr ? launch_variant<T, T, M, 8, true, true>(p, stream)
                                      : launch_variant<T, T, M, 8, false, true>(p, stream);
    if (p.norm_weight != nullptr)
      return f32 ? launch_variant<T, float, M, 8, true>(p, stream) : launch_variant<T, T, M, 8, true>(p, stream);
  }
  if (vec) return f32 ? launch_variant<T, float, M, 8>(p, stream) : launch_variant<T, T, M, 8>(p, stream);
  return f32 ? launch_variant<T, float, M, 1>(p, stream) : launch_variant<T, T, M, 1>(p, stream);
}

// The QKV epilogue's own conditions (launch_gemv checks the shared ones).
template <typename T>
Status validate_rope_store(const GemvParams<T>& p) {
  const RopeStore<T>& s = p.rope;
  if (!gemv_can_rope_store(p.M, p.K, p.x, p.w))
    return {ErrorCode::kUnsupported, "gemv: the QKV epilogue needs M <= " + std::to_string(kGemvNormMaxM) +
                                         ", K % 8 == 0 and 16-byte aligned x and w"};
  return check_rope_store("gemv", s, p.N, 2,
                          p.out != nullptr || p.out_f32 != nullptr || p.residual != nullptr || p.gated_silu);
}

}  // namespace

bool gemv_can_rope_store(int64_t M, int64_t K, const void* x, const void* w) {
  return M >= 1 && M <= kGemvNormMaxM && K % 8 == 0 && is_aligned16(x) && is_aligned16(w);
}

template <typename T>
Status launch_gemv(const GemvParams<T>& p, cudaStream_t stream) {
  if (p.M < 0 || p.N < 0 || p.K < 0)
    return {ErrorCode::kInvalidArgument, "gemv: negative M, N or K"};
  if (p.M > kGemvMaxM)
    return {ErrorCode::kInvalidArgument,
            "gemv: M = " + std::to_string(p.M) + " rows; the GEMV kernels serve M <= " + std::to_string(kGemvMaxM)};
  if (p.K > (int64_t{1} << 30))
    return {ErrorCode::kInvalidArgument, "gemv: K = " + std::to_string(p.K) + " is too large"};
  if (p.N / 2 > (int64_t{1} << 30))
    return {ErrorCode::kInvalidArgument, "gemv: N = " + std::to_string(p.N) + " is too large"};
  const bool rope = p.rope.q_out != nullptr;
  if (rope) {
    if (const Status st = validate_rope_store(p); !st.is_ok()) return st;
  } else if ((p.out == nullptr) == (p.out_f32 == nullptr)) {
    return {ErrorCode::kInvalidArgument, "gemv: set exactly one of out and out_f32"};
  }
  if (p.M == 0 || p.N == 0) return Status::ok();
  if (p.K > 0 && (p.x == nullptr || p.w == nullptr))
    return {ErrorCode::kInvalidArgument, "gemv: x and w are required"};
  // x must not overlap the output, which is q_out under the QKV epilogue (no out: checked above).
  const int64_t out_cols = rope ? int64_t{p.rope.num_q_heads} * p.rope.head_dim : p.gated_silu ? p.N / 2 : p.N;
  const int64_t out_bytes = p.M * out_cols * (p.out_f32 != nullptr ? 4 : int64_t{sizeof(T)});
  const void* out = rope                  ? static_cast<const void*>(p.rope.q_out)
                    : p.out_f32 != nullptr ? static_cast<const void*>(p.out_f32)
                                           : static_cast<const void*>(p.out);
  if (p.K > 0 && ranges_overlap(p.x, p.M * p.K * int64_t{sizeof(T)}, out, out_bytes))
    return {ErrorCode::kInvalidArgument, "gemv: x overlaps the output"};

  if (p.gated_silu && (p.N % 2 != 0 || p.residual != nullptr))
    return {ErrorCode::kUnsupported, "gemv: the gated SiLU epilogue needs an even N (gate/up row pairs), found N = " +
                                         std::to_string(p.N) + (p.residual != nullptr ? ", and no residual" : "")};
  if (p.norm_weight != nullptr && !gemv_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight))
    return {ErrorCode::kUnsupported, "gemv: the norm prologue needs M <= " + std::to_string(kGemvNormMaxM) +
                                         ", K % 8 == 0 and 16-byte aligned x, w and norm weight"};
  const bool vec = p.K % 8 == 0 && is_aligned16(p.x) && is_aligned16(p.w);
  const bool f32 = p.out_f32 != nullptr;
  switch (p.M) {
    case 1: return launch_for_m<T, 1>(p, stream, vec, f32);
    case 2: return launch_for_m<T, 2>(p, stream, vec, f32);
    case 3: return launch_for_m<T, 3>(p, stream, vec, f32);
    case 4: return launch_for_m<T, 4>(p, stream, vec, f32);
    case 5: return launch_for_m<T, 5>(p, stream, vec, f32);
    case 6: return launch_for_m<T, 6>(p, stream, vec, f32);
    case 7: return launch_for_m<T, 7>(p, stream, vec, f32);
    default: return launch_for_m<T, 8>(p, stream, vec, f32);
  }
}

bool gemv_can_fuse_norm(int64_t M, int64_t K, const void* x, const void* w, const void* norm_weight) {
  return M <= kGemvNormMaxM && K % 8 == 0 && is_aligned16(x) && is_aligned16(w) && is_aligned16(norm_weight);
}

template Status launch_gemv<__half>(const GemvParams<__half>&, cudaStream_t);
template Status launch_gemv<__nv_bfloat16>(const GemvParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
