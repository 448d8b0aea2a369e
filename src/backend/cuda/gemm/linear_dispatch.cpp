#include "backend/cuda/gemm/linear_dispatch.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <tuple>

#include "backend/cuda/dtype_of.h"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/gemm/gemv.cuh"
#include "fdpp/status.h"

namespace fdpp::cuda {
namespace {

static_assert(kSmallMKernelsMaxM == std::max(kGemvMaxM, kFlatGemmMaxM), "linear_table.h's sweep limit");

int64_t rows_of(const TensorView& t) { return t.numel() / t.dim(t.rank - 1); }
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }  // cuda_utils.cuh is device code

// Fills the fields GemvParams and FlatGemmParams share.
template <typename P, typename T>
P kernel_params(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) {
  P p;
  p.x = static_cast<const T*>(x.data);
  p.w = static_cast<const T*>(w.data);
  p.bias = bias.empty() ? nullptr : static_cast<const T*>(bias.data);
  if (out.dtype == DType::kF32) p.out_f32 = static_cast<float*>(out.data);
  else p.out = static_cast<T*>(out.data);
  p.M = rows_of(x);
  p.N = w.dim(0);
  p.K = w.dim(1);
  return p;
}

// rope, set: the QKV epilogue (out is empty; the kernel writes rope's q_out and cache instead).
template <typename T>
void run_kernel(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out,
                const LinearFusion& fusion, bool gated_silu, const RopeStore<T>* rope, cudaStream_t stream) {
  if (fusion.accumulate && out.dtype == DType::kF32)
    throw Error(ErrorCode::kInternal, "linear: accumulating into fp32 output is not supported");
  if (impl == LinearImpl::kGemv) {
    auto p = kernel_params<GemvParams<T>, T>(x, w, bias, out);
    if (fusion.accumulate) p.residual = p.out;
    p.norm_weight = fusion.norm_weight.empty() ? nullptr : static_cast<const T*>(fusion.norm_weight.data);
    p.norm_eps = fusion.eps;
    p.gated_silu = gated_silu;
    if (rope != nullptr) p.rope = *rope;
    throw_if_error(launch_gemv(p, stream));
  } else {
    auto p = kernel_params<FlatGemmParams<T>, T>(x, w, bias, out);
    if (fusion.accumulate) p.residual = p.out;
    p.norm_weight = fusion.norm_weight.empty() ? nullptr : static_cast<const T*>(fusion.norm_weight.data);
    p.norm_eps = fusion.eps;
    p.norm_scale_only = fusion.unit_norm_weight;
    p.gated_silu = gated_silu;
    if (rope != nullptr) p.rope = *rope;
    throw_if_error(launch_flat_gemm(p, stream));
  }
}

void run_kernel_for_dtype(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                          TensorView& out, const LinearFusion& fusion, bool gated_silu, cudaStream_t stream) {
  switch (x.dtype) {
    case DType::kF16: run_kernel<__half>(impl, x, w, bias, out, fusion, gated_silu, nullptr, stream); break;
    case DType::kBF16: run_kernel<__nv_bfloat16>(impl, x, w, bias, out, fusion, gated_silu, nullptr, stream); break;
    default:
      throw Error(ErrorCode::kUnsupported, fmt::format("linear: activation dtype {}", dtype_name(x.dtype)));
  }
}

}  // namespace

LinearDispatcher::LinearDispatcher(cudaStream_t stream, std::string gpu_name, LinearTable table)
    : stream_(stream), gpu_(std::move(gpu_name)), table_(std::move(table)), cublaslt_(stream) {
  if (const char* v = std::getenv("FDPP_LINEAR_IMPL"); v != nullptr && *v != '\0') {
    for (LinearImpl impl : {LinearImpl::kGemv, LinearImpl::kFlatGemm, LinearImpl::kCublasLt})
      if (std::string(v) == linear_impl_name(impl)) forced_ = impl;
    if (!forced_)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("FDPP_LINEAR_IMPL='{}': expected gemv, flat_gemm or cublaslt", v));
  }
}

LinearInflection LinearDispatcher::inflection(DType dtype, int64_t n, int64_t k, bool gated) const {
  const auto key = std::make_tuple(static_cast<int>(dtype), n, k, gated);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    it = cache_.emplace(key, table_.find({gpu_, dtype, n, k}).value_or(builtin_linear_inflection(n, k, gated))).first;
  }
  return it->second;
}

bool LinearDispatcher::can_run(LinearImpl impl, const TensorView& x, const TensorView& w) const {
  const int64_t m = rows_of(x);
  switch (impl) {
    case LinearImpl::kGemv: return m <= kGemvMaxM;
    case LinearImpl::kFlatGemm:
      return m <= kFlatGemmMaxM && w.dim(1) % 8 == 0 && aligned16(x.data) && aligned16(w.data);
    case LinearImpl::kCublasLt: return true;
  }
  return false;
}

LinearImpl LinearDispatcher::choose(const TensorView& x, const TensorView& w) const { return choose(x, w, false); }

LinearImpl LinearDispatcher::choose_gated(const TensorView& x, const TensorView& w) const { return choose(x, w, true); }

LinearImpl LinearDispatcher::choose(const TensorView& x, const TensorView& w, bool gated) const {
  if (forced_ && can_run(*forced_, x, w)) return *forced_;
  LinearImpl impl = choose_linear_impl(inflection(w.dtype, w.dim(0), w.dim(1), gated), rows_of(x));
  // An implementation that cannot serve the operands hands them to the next one up.
  if (impl == LinearImpl::kGemv && !can_run(impl, x, w)) impl = LinearImpl::kFlatGemm;
  if (impl == LinearImpl::kFlatGemm && !can_run(impl, x, w)) impl = LinearImpl::kCublasLt;
  return impl;
}

void LinearDispatcher::run(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) {
  launch(choose(x, w), x, w, bias, LinearFusion{}, out);  // choose() returns an implementation that can run
}

void LinearDispatcher::run_with(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                                TensorView& out) {
  run_with(impl, x, w, bias, LinearFusion{}, out);
}

bool LinearDispatcher::can_fuse_norm(LinearImpl impl, const TensorView& x, const TensorView& w,
                                     const LinearFusion& norm) const {
  const int64_t m = rows_of(x), k = w.dim(1);
  const TensorView& g = norm.norm_weight;
  const int64_t flat_max_m =
      norm.unit_norm_weight ? FlatGemmTraits::kScaleOnlyNormFusionMaxM : FlatGemmTraits::kNormFusionMaxM;
  return g.dtype == x.dtype && ((impl == LinearImpl::kGemv && gemv_can_fuse_norm(m, k, x.data, w.data, g.data)) ||
                                (impl == LinearImpl::kFlatGemm && m <= flat_max_m &&
                                 flat_gemm_can_fuse_norm(m, k, x.data, w.data, g.data)));
}

void LinearDispatcher::run_with(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                                const LinearFusion& fusion, TensorView& out) {
  if (!can_run(impl, x, w) || (!fusion.norm_weight.empty() && !can_fuse_norm(impl, x, w, fusion)))
    throw Error(ErrorCode::kInternal, fmt::format("linear: {} cannot serve x {} . w {}{}", linear_impl_name(impl),
                                                  x.shape_string(), w.shape_string(),
                                                  fusion.norm_weight.empty() ? "" : " with the norm"));
  launch(impl, x, w, bias, fusion, out);
}

void LinearDispatcher::launch(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                              const LinearFusion& fusion, TensorView& out, bool gated_silu) {
  ++calls_[static_cast<size_t>(impl)];
  if (impl == LinearImpl::kCublasLt) cublaslt_.run(x, w, bias, out, fusion.accumulate);
  else run_kernel_for_dtype(impl, x, w, bias, out, fusion, gated_silu, stream_);
}

bool LinearDispatcher::can_gate_silu(LinearImpl impl, const TensorView& x, const TensorView& w) const {
  // The GEMV at any M it serves; the flat GEMM on its streamed mainloop only (FlatGemmParams).
  return w.dim(0) % 2 == 0 && can_run(impl, x, w) &&
         (impl == LinearImpl::kGemv || (impl == LinearImpl::kFlatGemm && rows_of(x) <= kFlatGemmStreamedMaxM));
}

void LinearDispatcher::run_gated_silu_with(LinearImpl impl, const TensorView& x, const TensorView& w,
                                           const LinearFusion& norm, TensorView& out) {
  if (norm.accumulate || !can_gate_silu(impl, x, w) ||
      (!norm.norm_weight.empty() && !can_fuse_norm(impl, x, w, norm)))
    throw Error(ErrorCode::kInternal, fmt::format("linear: {} cannot serve the gated x {} . w {}{}",
                                                  linear_impl_name(impl), x.shape_string(), w.shape_string(),
                                                  norm.norm_weight.empty() ? "" : " with the norm"));
  launch(impl, x, w, TensorView{}, norm, out, /*gated_silu=*/true);
}

bool LinearDispatcher::can_rope_store(LinearImpl impl, const TensorView& x, const TensorView& w,
                                      int64_t head_dim) const {
  // The GEMV's pairs need an even head dim; the flat GEMM's streamed mainloop rotates 8-pair tiles.
  const int64_t m = rows_of(x);
  if (!can_run(impl, x, w)) return false;
  if (impl == LinearImpl::kGemv) return head_dim % 2 == 0 && gemv_can_rope_store(m, w.dim(1), x.data, w.data);
  return impl == LinearImpl::kFlatGemm && m <= kFlatGemmRopeMaxM && head_dim % 16 == 0;
}

template <typename T>
void LinearDispatcher::run_rope_store_with(LinearImpl impl, const TensorView& x, const TensorView& w,
                                           const TensorView& bias, const LinearFusion& norm,
                                           const RopeStore<T>& rope) {
  if (norm.accumulate || x.dtype != dtype_of<T>() || !can_rope_store(impl, x, w, rope.head_dim) ||
      (!norm.norm_weight.empty() && !can_fuse_norm(impl, x, w, norm)))
    throw Error(ErrorCode::kInternal, fmt::format("linear: {} cannot serve the QKV epilogue of x {} ({}) . w {}{}",
                                                  linear_impl_name(impl), x.shape_string(), dtype_name(x.dtype),
                                                  w.shape_string(), norm.norm_weight.empty() ? "" : " with the norm"));
  ++calls_[static_cast<size_t>(impl)];
  TensorView no_out;
  run_kernel<T>(impl, x, w, bias, no_out, norm, /*gated_silu=*/false, &rope, stream_);
}

template void LinearDispatcher::run_rope_store_with<__half>(LinearImpl, const TensorView&, const TensorView&,
                                                            const TensorView&, const LinearFusion&,
                                                            const RopeStore<__half>&);
template void LinearDispatcher::run_rope_store_with<__nv_bfloat16>(LinearImpl, const TensorView&, const TensorView&,
                                                                   const TensorView&, const LinearFusion&,
                                                                   const RopeStore<__nv_bfloat16>&);

bool LinearDispatcher::run_fused(const TensorView& x, const TensorView& w, const TensorView& bias,
                                 const LinearFusion& fusion, TensorView& out) {
  // The choice stays the table's: moving a norm from cuBLASLt to the flat GEMM at M = 9-16 to save
  // the RMSNorm launch cost more than it saved (the two-n-tile norm variant runs 1.2-1.4x the plain
  // one; batch 16 went from 6.40 to 7.29 ms, docs/PERF.md). For the same reason the flat GEMM
  // takes the norm only up to FlatGemmTraits::kNormFusionMaxM rows.
  const LinearImpl impl = choose(x, w);
  if (!fusion.norm_weight.empty() && !can_fuse_norm(impl, x, w, fusion)) return false;
  launch(impl, x, w, bias, fusion, out);
  return true;
}

}  // namespace fdpp::cuda
