#include "backend/cuda/cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_ceilings.h"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/kernel_timeline.h"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "backend/cuda/sampling/sampling.cuh"

namespace fdpp::cuda {
namespace {

// Calls f with a value of the C++ type of an activation dtype.
template <typename F>
void dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF16: f(__half{}); return;
    case DType::kBF16: f(__nv_bfloat16{}); return;
    default: throw Error(ErrorCode::kInternal, fmt::format("cuda backend: activation dtype {}", dtype_name(dtype)));
  }
}

template <typename T>
T* ptr(const TensorView& t) {
  return static_cast<T*>(t.data);
}

int64_t rows_of(const TensorView& t) { return t.numel() / t.dim(t.rank - 1); }

}  // namespace

CudaBackend::CudaBackend(int device, DType activation_dtype) : device_(device), dtype_(activation_dtype) {
  if (dtype_ != DType::kF16 && dtype_ != DType::kBF16)
    throw Error(ErrorCode::kUnsupported, fmt::format("cuda backend: activations must be F16 or BF16, not {}",
                                                     dtype_name(dtype_)));
  check(cudaSetDevice(device_), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
  name_ = fmt::format("cuda:{} ({})", device_, prop.name);
  ceiling_ = cuda::read_bandwidth_ceiling(prop.name);
  sm_count_ = prop.multiProcessorCount;
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  // The tuned inflection points of `fdpp tune`, when it has run on this machine.
  const std::filesystem::path table_path = default_linear_table_path();
  LinearTable table = std::filesystem::exists(table_path) ? LinearTable::load(table_path) : LinearTable{};
  linear_ = std::make_unique<LinearDispatcher>(stream_, prop.name, std::move(table));
  if (env_switch("FDPP_CUDA_GRAPHS") == 0) graphs_enabled_ = false;
  if (env_switch("FDPP_GPU_SAMPLING") == 0) sampling_enabled_ = false;
  if (env_switch("FDPP_OVERLAP_STEPS") == 0) overlap_steps_ = false;
  if (env_switch("FDPP_QKV_EPILOGUE") == 0) qkv_epilogue_ = false;
  if (env_switch("FDPP_POISON_ALLOCATIONS") == 1) poison_allocations_ = true;
  fallback_counter_ = allocate_bytes(sizeof(unsigned long long), "fallback counter");
  check(cudaMemsetAsync(fallback_counter_.view().data, 0, sizeof(unsigned long long), stream_), "memset");
  void* host = nullptr;
  check(cudaMallocHost(&host, sizeof(unsigned long long)), "fallback counter (page-locked)");
  fallback_host_ = static_cast<unsigned long long*>(host);
  check(cudaEventCreateWithFlags(&fallback_read_, cudaEventDisableTiming), "fallback counter event");
}

CudaBackend::~CudaBackend() {
  graphs_.abandon_capture(stream_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (fallback_read_ != nullptr) cudaEventDestroy(fallback_read_);
  if (fallback_host_ != nullptr) cudaFreeHost(fallback_host_);
  graphs_.clear();
  linear_.reset();
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

DeviceTensor CudaBackend::allocate_bytes(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 16));
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(ErrorCode::kOutOfMemory,
                fmt::format("{}: out of GPU memory: needs {} bytes ({:.2f} GiB), {} bytes ({:.2f} GiB) free of {:.2f} GiB",
                            what, bytes, bytes / 1073741824.0, free_bytes, free_bytes / 1073741824.0,
                            total_bytes / 1073741824.0));
  }
  std::shared_ptr<void> owner(p, [](void* q) { cudaFree(q); });
  // All-ones bytes are NaN in every float dtype and -1 as int32: a read before the first write shows.
  if (poison_allocations_) check(cudaMemset(p, 0xFF, std::max<size_t>(bytes, 16)), what);
  return DeviceTensor(TensorView::contiguous(p, DType::kI32, {static_cast<int64_t>(bytes / 4)}, Device::kCuda),
                      owner);
}

DeviceTensor CudaBackend::allocate(DType dtype, std::initializer_list<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  DeviceTensor t = allocate_bytes(static_cast<size_t>(n) * dtype_size(dtype), "activation buffer");
  t.view() = TensorView::contiguous(t.view().data, dtype, shape, Device::kCuda);
  return t;
}

TensorView CudaBackend::upload(const TensorView& host) {
  DeviceTensor d = allocate_bytes(host.nbytes(), "weight upload");
  TensorView view = host;
  view.data = d.view().data;
  view.device = Device::kCuda;
  // On stream_, not through cudaMemcpy: from pageable memory that returns before the DMA lands, and
  // the legacy stream it uses does not order the kernels of our non-blocking stream after it.
  check(cudaMemcpyAsync(view.data, host.data, host.nbytes(), cudaMemcpyHostToDevice, stream_), "weight upload");
  check(cudaStreamSynchronize(stream_), "weight upload");
  weights_.push_back(std::move(d));
  return view;
}

TensorView CudaBackend::adopt_interleaved_rows(const TensorView& a, const TensorView& b) {
  if (a.dtype != dtype_ || b.dtype != dtype_ || a.rank != 2 || b.rank != 2 || a.dim(0) != b.dim(0) ||
      a.dim(1) != b.dim(1) || !a.is_contiguous() || !b.is_contiguous())
    return {};
  const size_t row_bytes = a.nbytes() / static_cast<size_t>(a.dim(0));
  DeviceTensor d = allocate_bytes(2 * a.nbytes(), "weight upload");
  TensorView view = a;
  view.shape[0] = 2 * a.dim(0);
  view.data = d.view().data;
  view.device = Device::kCuda;
  // a's rows to the even rows, b's to the odd ones: destination pitch two rows, source pitch one.
  char* dst = static_cast<char*>(view.data);
  const auto rows = static_cast<size_t>(a.dim(0));
  check(cudaMemcpy2DAsync(dst, 2 * row_bytes, a.data, row_bytes, row_bytes, rows, cudaMemcpyHostToDevice, stream_),
        "weight upload");
  check(cudaMemcpy2DAsync(dst + row_bytes, 2 * row_bytes, b.data, row_bytes, row_bytes, rows, cudaMemcpyHostToDevice,
                          stream_),
        "weight upload");
  check(cudaStreamSynchronize(stream_), "weight upload");
  weights_.push_back(std::move(d));
  return view;
}

TensorView CudaBackend::adopt_weight(const TensorView& host) {
  if (host.dtype == dtype_) return upload(host);
  // Another float dtype: widen to fp32 on the host, narrow to the activation dtype on the GPU.
  std::vector<float> wide(static_cast<size_t>(host.numel()));
  convert_to_float(host.data, host.dtype, wide.size(), wide.data());
  DeviceTensor staging = allocate_bytes(wide.size() * sizeof(float), "weight conversion");
  // Same stream as the conversion kernel, so the kernel reads the staging buffer only after the copy.
  check(cudaMemcpyAsync(staging.view().data, wide.data(), wide.size() * sizeof(float), cudaMemcpyHostToDevice,
                        stream_),
        "weight upload");
  DeviceTensor d = allocate_bytes(static_cast<size_t>(host.numel()) * dtype_size(dtype_), "weight upload");
  TensorView view = host;
  view.data = d.view().data;
  view.dtype = dtype_;
  view.device = Device::kCuda;
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    throw_if_error(launch_convert_from_f32<T>(static_cast<const float*>(staging.view().data), ptr<T>(view),
                                              host.numel(), stream_));
  });
  check(cudaStreamSynchronize(stream_), "weight conversion");
  weights_.push_back(std::move(d));
  return view;
}

void CudaBackend::init_kv_cache(const KvCacheShape& shape) {
  graphs_.clear();
  kv_shape_ = shape;
  k_cache_.clear();
  v_cache_.clear();
  const size_t per_layer = static_cast<size_t>(shape.num_blocks * shape.block_size * shape.num_kv_heads *
                                               shape.head_dim) * dtype_size(dtype_);
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  const size_t need = 2 * per_layer * static_cast<size_t>(shape.num_layers);
  if (need > free_bytes)
    throw Error(ErrorCode::kOutOfMemory,
                fmt::format("KV cache of {} blocks x {} tokens does not fit: needs {} bytes ({:.2f} GiB), "
                            "{} bytes ({:.2f} GiB) free; lower --kv-cache-tokens or the batch size",
                            shape.num_blocks, shape.block_size, need, need / 1073741824.0, free_bytes,
                            free_bytes / 1073741824.0));
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    k_cache_.push_back(allocate(dtype_, {shape.num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim}));
    v_cache_.push_back(allocate(dtype_, {shape.num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim}));
  }
  const Status st = validate_softmax_range(range_, shape.num_blocks * shape.block_size);
  throw_if_error(st);
}

void CudaBackend::fill_random(TensorView& t, uint64_t seed, float mean, float stddev) {
  switch (t.dtype) {
    case DType::kF16: throw_if_error(launch_fill_random(ptr<__half>(t), t.numel(), seed, mean, stddev, stream_)); break;
    case DType::kBF16:
      throw_if_error(launch_fill_random(ptr<__nv_bfloat16>(t), t.numel(), seed, mean, stddev, stream_));
      break;
    case DType::kF32: throw_if_error(launch_fill_random(ptr<float>(t), t.numel(), seed, mean, stddev, stream_)); break;
    default: throw Error(ErrorCode::kInternal, "fill_random: not a float tensor");
  }
  // Weights are filled this way, and the linear kernels load weights before their grid-dependency
  // wait (launch.cuh): nothing may launch behind a fill that is still writing.
  check(cudaStreamSynchronize(stream_), "fill_random");
}

void CudaBackend::randomize_kv_cache(uint64_t seed) {
  for (size_t l = 0; l < k_cache_.size(); ++l) {
    fill_random(k_cache_[l].view(), seed + 2 * l, 0.0f, 1.0f);
    fill_random(v_cache_[l].view(), seed + 2 * l + 1, 0.0f, 1.0f);
  }
}

void CudaBackend::begin_step(const StepBatch& b) {
  graphs_.abandon_capture(stream_);  // a step that threw part-way leaves its recording open
  tokens_ = b.num_tokens();
  rows_ = static_cast<int64_t>(b.logit_rows.size());
  max_blocks_ = b.max_blocks_per_seq;
  // Split the tokens into decode rows and prefill tiles (see the header).
  std::vector<int32_t> decode_rows, prefill_rows, tiles;
  decode_max_kv_len_ = 0;
  for (int64_t i = 0; i < tokens_;) {
    int64_t j = i + 1;
    while (j < tokens_ && b.token_seq[static_cast<size_t>(j)] == b.token_seq[static_cast<size_t>(i)] &&
           b.positions[static_cast<size_t>(j)] > b.positions[static_cast<size_t>(j - 1)])
      ++j;
    if (j - i == 1) {
      decode_rows.push_back(static_cast<int32_t>(i));
      decode_max_kv_len_ = std::max<int64_t>(decode_max_kv_len_, b.positions[static_cast<size_t>(i)] + 1);
    } else {
      for (int64_t k = i; k < j; k += kPrefillTileRows) {
        tiles.push_back(static_cast<int32_t>(prefill_rows.size() + (k - i)));
        tiles.push_back(static_cast<int32_t>(std::min<int64_t>(kPrefillTileRows, j - k)));
      }
      for (int64_t k = i; k < j; ++k) prefill_rows.push_back(static_cast<int32_t>(k));
    }
    i = j;
  }
  decode_rows_ = static_cast<int64_t>(decode_rows.size());
  prefill_rows_ = static_cast<int64_t>(prefill_rows.size());
  prefill_tiles_ = static_cast<int64_t>(tiles.size() / 2);

  staging_.clear();
  staging_.insert(staging_.end(), b.tokens.begin(), b.tokens.end());
  staging_.insert(staging_.end(), b.positions.begin(), b.positions.end());
  staging_.insert(staging_.end(), b.token_seq.begin(), b.token_seq.end());
  staging_.insert(staging_.end(), b.logit_rows.begin(), b.logit_rows.end());
  staging_.insert(staging_.end(), b.block_tables.begin(), b.block_tables.end());
  decode_offset_ = static_cast<int64_t>(staging_.size());
  staging_.insert(staging_.end(), decode_rows.begin(), decode_rows.end());
  prefill_offset_ = static_cast<int64_t>(staging_.size());
  staging_.insert(staging_.end(), prefill_rows.begin(), prefill_rows.end());
  tiles_offset_ = static_cast<int64_t>(staging_.size());
  staging_.insert(staging_.end(), tiles.begin(), tiles.end());
  const auto n = static_cast<int64_t>(staging_.size());
  if (n > step_meta_capacity_) {
    step_meta_capacity_ = std::max<int64_t>(n, 2 * step_meta_capacity_);
    step_meta_ = allocate(DType::kI32, {step_meta_capacity_});
    graphs_.clear();
  }
  // Queued, not waited for: the graph or kernels after it read it in stream order.
  host_staging_.begin();
  host_staging_.copy_to_device(step_meta_.view().data, staging_.data(), static_cast<size_t>(n) * sizeof(int32_t),
                               stream_);
  if (b.fed_tokens != 0) {
    // The tokens lead the metadata; the sample that drew them is queued before this step.
    if (!feeds_sampled_tokens() || b.fed_tokens < 0 || b.fed_tokens > sampled_rows_ || b.fed_tokens > tokens_)
      throw Error(ErrorCode::kInternal,
                  fmt::format("cuda backend: {} fed tokens in a step of {} tokens after a sample of {} rows{}",
                              b.fed_tokens, tokens_, sampled_rows_, sampling_enabled_ ? "" : " (GPU sampling is off)"));
    check(cudaMemcpyAsync(step_meta_.view().data, sample_tokens_.tensor.view().data,
                          static_cast<size_t>(b.fed_tokens) * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_),
          "fed tokens");
  }
  attn_plan_valid_ = false;  // planned at the first attention call, which knows the head count
}

TokenSlots CudaBackend::slots() const {
  const auto* base = static_cast<const int32_t*>(step_meta_.view().data);
  TokenSlots s;
  s.positions = base + tokens_;
  s.token_seq = base + 2 * tokens_;
  s.block_tables = base + 3 * tokens_ + rows_;
  s.max_blocks_per_seq = max_blocks_;
  s.tokens = tokens_;
  return s;
}

void CudaBackend::embed(const TensorView& table, TensorView& out) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    GatherRowsParams<T> p{ptr<T>(table), static_cast<const int32_t*>(step_meta_.view().data), ptr<T>(out),
                          tokens_, table.dim(1)};
    throw_if_error(launch_gather_rows(p, stream_));
  });
}

void CudaBackend::gather_rows(const TensorView& x, TensorView& out) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    GatherRowsParams<T> p{ptr<T>(x), static_cast<const int32_t*>(step_meta_.view().data) + 3 * tokens_,
                          ptr<T>(out), rows_, x.dim(x.rank - 1)};
    throw_if_error(launch_gather_rows(p, stream_));
  });
}

void CudaBackend::rmsnorm(const TensorView& x, const TensorView& weight, float eps, TensorView& out) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    RmsNormParams<T> p{ptr<T>(x), nullptr, ptr<T>(weight), ptr<T>(out), rows_of(x), x.dim(x.rank - 1), eps};
    throw_if_error(launch_rmsnorm(p, stream_));
  });
}

void CudaBackend::linear(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) {
  linear_->run(x, w, bias, out);
}

void CudaBackend::linear_fused(const TensorView& x, const TensorView& w, const TensorView& bias,
                               const LinearFusion& fusion, TensorView& out, TensorView& scratch) {
  if (linear_->run_fused(x, w, bias, fusion, out)) return;
  Backend::linear_fused(x, w, bias, fusion, out, scratch);  // a norm the chosen kernel cannot take
}

template <typename T>
PagedKv<T> CudaBackend::layer_kv(int64_t layer) {
  const auto l = static_cast<size_t>(layer);
  return {ptr<T>(k_cache_.at(l).view()), ptr<T>(v_cache_.at(l).view()), static_cast<int32_t>(kv_shape_.num_blocks),
          static_cast<int32_t>(kv_shape_.block_size), static_cast<int32_t>(kv_shape_.num_kv_heads),
          static_cast<int32_t>(kv_shape_.head_dim)};
}

void CudaBackend::fold_norm_weight(const TensorView& w, const TensorView& norm) {
  if (w.rank != 2 || !w.is_contiguous() || w.device != Device::kCuda || w.dtype != dtype_ || norm.rank != 1 ||
      norm.dim(0) != w.dim(1) || norm.dtype != dtype_ || norm.device != Device::kCuda)
    throw Error(ErrorCode::kInternal, fmt::format("fold_norm_weight: weight {} ({}) with norm {} ({})",
                                                  w.shape_string(), dtype_name(w.dtype), norm.shape_string(),
                                                  dtype_name(norm.dtype)));
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    throw_if_error(launch_scale_columns<T>(ptr<T>(w), ptr<T>(norm), w.dim(0), w.dim(1), stream_));
  });
}

bool CudaBackend::defers_norm(const TensorView& x, const TensorView& w, const LinearFusion& norm) const {
  if (!norm.unit_norm_weight || norm.norm_weight.empty() || norm.accumulate || rows_of(x) > kDeferredNormMaxRows)
    return false;
  return !linear_->can_fuse_norm(linear_->choose(x, w), x, w, norm);
}

void CudaBackend::qkv_projection(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                                 const LinearFusion& norm, const TensorView& inv_freq, TensorView& qkv,
                                 TensorView& normed, TensorView& q_out) {
  if (qkv_epilogue(layer, x, wqkv, bqkv, norm, inv_freq, q_out)) return;
  // A bias would have to be added after the scale: such models normalise first.
  if (!bqkv.empty() || !defers_norm(x, wqkv, norm)) {
    Backend::qkv_projection(layer, x, wqkv, bqkv, norm, inv_freq, qkv, normed, q_out);
    return;
  }
  linear_->run(x, wqkv, TensorView{}, qkv);  // of the unnormalised rows: the norm weight is in wqkv
  qkv_store(layer, qkv, inv_freq, q_out, x, norm.eps);
}

bool CudaBackend::qkv_epilogue(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                               const LinearFusion& norm, const TensorView& inv_freq, TensorView& q_out) {
  const int64_t M = rows_of(x);
  if (!qkv_epilogue_ || norm.accumulate || q_out.rank != 3 || q_out.dim(0) != M || M != tokens_) return false;
  const LinearImpl impl = linear_->choose(x, wqkv);
  if (!linear_->can_rope_store(impl, x, wqkv, q_out.dim(2)) ||
      (!norm.norm_weight.empty() && !linear_->can_fuse_norm(impl, x, wqkv, norm)))
    return false;
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    const PagedKv<T> kv = layer_kv<T>(layer);
    const TokenSlots s = slots();
    const RopeStore<T> rope{ptr<T>(q_out), kv.k, kv.v, static_cast<const float*>(inv_freq.data), s.positions,
                            s.token_seq, s.block_tables, s.max_blocks_per_seq, kv.block_size,
                            static_cast<int32_t>(q_out.dim(1)), kv.num_kv_heads, kv.head_dim};
    linear_->run_rope_store_with(impl, x, wqkv, bqkv, norm, rope);
  });
  return true;
}

void CudaBackend::qkv_rope_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq, TensorView& q_out) {
  qkv_store(layer, qkv, inv_freq, q_out, TensorView{}, 0.0f);
}

void CudaBackend::qkv_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq, TensorView& q_out,
                            const TensorView& scale_rows, float eps) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    QkvStoreParams<T> p;
    p.kv = layer_kv<T>(layer);
    p.slots = slots();
    p.qkv = ptr<T>(qkv);
    p.inv_freq = static_cast<const float*>(inv_freq.data);
    p.q_out = ptr<T>(q_out);
    p.num_q_heads = static_cast<int32_t>(q_out.dim(1));
    if (!scale_rows.empty()) p.scale = {ptr<T>(scale_rows), scale_rows.dim(scale_rows.rank - 1), eps};
    throw_if_error(launch_qkv_store(p, stream_));
  });
}

void CudaBackend::silu_mul(const TensorView& gate_up, TensorView& out) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    const SiluMulParams<T> p{ptr<T>(gate_up), ptr<T>(out), rows_of(out), out.dim(out.rank - 1), false, {}};
    throw_if_error(launch_silu_mul(p, stream_));
  });
}

void CudaBackend::gate_up_silu(const TensorView& x, const TensorView& w, const LinearFusion& norm, TensorView& act,
                               TensorView& normed, TensorView& gate_up) {
  if (norm.accumulate) throw Error(ErrorCode::kInternal, "gate_up_silu: no residual add into the gate/up product");
  const LinearImpl impl = linear_->choose_gated(x, w);
  if (linear_->can_gate_silu(impl, x, w)) {
    if (norm.norm_weight.empty() || linear_->can_fuse_norm(impl, x, w, norm)) {
      linear_->run_gated_silu_with(impl, x, w, norm, act);
    } else {  // a norm this kernel cannot take at this M: normalise first, still no product stored
      rmsnorm(x, norm.norm_weight, norm.eps, normed);
      linear_->run_gated_silu_with(impl, normed, w, LinearFusion{}, act);
    }
    return;
  }
  // cuBLASLt: the products, then the interleaved silu_mul, which applies a deferred norm's scale.
  const bool deferred = defers_norm(x, w, norm);
  if (deferred) linear_->run(x, w, TensorView{}, gate_up);  // the norm weight is in w
  else linear_fused(x, w, TensorView{}, norm, gate_up, normed);
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    SiluMulParams<T> p{ptr<T>(gate_up), ptr<T>(act), rows_of(act), act.dim(act.rank - 1), /*interleaved=*/true, {}};
    if (deferred) p.scale = {ptr<T>(x), x.dim(x.rank - 1), norm.eps};
    throw_if_error(launch_silu_mul(p, stream_));
  });
}

void CudaBackend::add(TensorView& x, const TensorView& y) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    throw_if_error(launch_add(AddParams<T>{ptr<T>(x), ptr<T>(y), x.numel()}, stream_));
  });
}

void CudaBackend::plan_step_attention(int64_t hq) {
  decode_plan_ = plan_attention(decode_rows_, hq, kv_shape_.num_kv_heads, kv_shape_.head_dim, decode_max_kv_len_,
                                sm_count_);
  prefill_plan_ = plan_prefill_attention(prefill_rows_, hq, kv_shape_.num_kv_heads, kv_shape_.head_dim);
  attn_plan_valid_ = true;
  const size_t need = decode_plan_.workspace_bytes + prefill_plan_.workspace_bytes + 256;
  if (need > attn_workspace_bytes_) {
    attn_workspace_ = allocate_bytes(need, "attention workspace");
    attn_workspace_bytes_ = need;
    graphs_.clear();
  }
}

bool CudaBackend::begin_graph_step(uint64_t model_key, int64_t num_q_heads) {
  // Prefill steps are long enough that launch gaps do not matter, and vary in shape every time.
  if (!graphs_enabled_ || prefill_rows_ > 0 || decode_rows_ == 0) return false;
  plan_step_attention(num_q_heads);
  const StepGraphKey key{model_key, tokens_, rows_, max_blocks_, decode_plan_.num_splits, decode_plan_.split_size,
                         decode_plan_.mma_stages, decode_plan_.tensor_cores, decode_plan_.mma_bulk,
                         decode_plan_.mma_tensor_maps, decode_plan_.split_pdl};
  if (graphs_.launch(key, stream_)) return true;
  if (graphs_.seen_before(key)) graphs_.begin_capture(key, stream_);
  return false;
}

void CudaBackend::end_graph_step() {
  if (graphs_.capturing()) graphs_.end_capture_and_launch(stream_);
}

void CudaBackend::attention(int64_t layer, const TensorView& q, float scale, TensorView& out) {
  const int64_t hq = q.dim(1);
  if (!attn_plan_valid_) plan_step_attention(hq);
  const auto* meta = static_cast<const int32_t*>(step_meta_.view().data);
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    AttentionParams<T> p;
    p.q = ptr<T>(q);
    p.out = ptr<T>(out);
    p.kv = layer_kv<T>(layer);
    p.slots = slots();
    p.num_q_heads = static_cast<int32_t>(hq);
    p.scale = scale;
    p.range = static_cast<size_t>(layer) < layer_ranges_.size() ? layer_ranges_[static_cast<size_t>(layer)] : range_;
    p.fallback_rows = static_cast<unsigned long long*>(fallback_counter_.view().data);
    if (decode_rows_ > 0) {
      p.plan = decode_plan_;
      p.workspace = attn_workspace_.view().data;
      p.rows = meta + decode_offset_;
      p.num_rows = decode_rows_;
      throw_if_error(launch_attention(p, stream_));
    }
    if (prefill_rows_ > 0) {
      p.plan = prefill_plan_;
      // The prefill region starts after the decode one, 256-byte aligned.
      p.workspace = static_cast<char*>(attn_workspace_.view().data) + (decode_plan_.workspace_bytes + 255) / 256 * 256;
      p.rows = meta + prefill_offset_;
      p.num_rows = prefill_rows_;
      p.tiles = meta + tiles_offset_;
      p.num_tiles = static_cast<int32_t>(prefill_tiles_);
      throw_if_error(launch_prefill_attention(p, stream_));
    }
  });
}

void CudaBackend::logits_to_host(const TensorView& logits, std::span<float> out) {
  if (logits.dtype != DType::kF32) throw Error(ErrorCode::kInternal, "cuda backend: logits must be F32");
  check(cudaMemcpyAsync(out.data(), logits.data, std::min(out.size_bytes(), logits.nbytes()),
                        cudaMemcpyDeviceToHost, stream_),
        "logits to host");
  check(cudaStreamSynchronize(stream_), "forward step");
}

void* CudaBackend::reserve(GrowingBuffer& buffer, size_t bytes, const char* what) {
  if (bytes > buffer.bytes || buffer.bytes == 0) {  // never empty: a valid address even for 0 bytes
    buffer.bytes = std::max<size_t>({bytes, 2 * buffer.bytes, 1});
    buffer.tensor = allocate_bytes(buffer.bytes, what);
  }
  return buffer.tensor.view().data;
}

void* CudaBackend::upload(GrowingBuffer& buffer, const void* host, size_t bytes, const char* what) {
  void* dev = reserve(buffer, bytes, what);
  host_staging_.copy_to_device(dev, host, bytes, stream_);
  return dev;
}

bool CudaBackend::queue_sample_rows(TensorView& logits, std::span<const DeviceSamplingRow> rows,
                                    const PenaltyTokens& penalties) {
  if (!sampling_enabled_ || logits.dtype != DType::kF32 || logits.dim(logits.rank - 1) > kMaxSampleVocab) return false;
  const auto r = static_cast<int64_t>(rows.size());
  auto* dev_tokens =
      static_cast<int32_t*>(reserve(sample_tokens_, static_cast<size_t>(r) * sizeof(int32_t), "sampled tokens"));
  SampleParams p;
  p.logits = static_cast<float*>(logits.data);
  p.rows = r;
  p.vocab = logits.dim(logits.rank - 1);
  p.row_params =
      static_cast<const DeviceSamplingRow*>(upload(sample_rows_, rows.data(), rows.size_bytes(), "sampling rows"));
  p.tokens_out = dev_tokens;
  if (!penalties.offsets.empty()) {
    if (static_cast<int64_t>(penalties.offsets.size()) != r + 1 ||
        penalties.offsets.back() != static_cast<int64_t>(penalties.ids.size()))
      throw Error(ErrorCode::kInternal, fmt::format("queue_sample_rows: {} penalty offsets for {} rows and {} ids",
                                                    penalties.offsets.size(), r, penalties.ids.size()));
    p.penalty_ids = static_cast<const int32_t*>(
        upload(penalty_ids_, penalties.ids.data(), penalties.ids.size_bytes(), "penalty ids"));
    p.penalty_offsets = static_cast<const int64_t*>(
        upload(penalty_offsets_, penalties.offsets.data(), penalties.offsets.size_bytes(), "penalty offsets"));
  }
  throw_if_error(launch_sample(p, stream_));
  sampled_.push(dev_tokens, r, stream_);
  sampled_rows_ = r;
  return true;
}

void CudaBackend::take_sampled(std::span<int32_t> tokens) { sampled_.pop(tokens); }

void CudaBackend::set_softmax_ranges(const std::vector<SoftmaxRangeSetting>& per_layer) {
  graphs_.clear();  // the ranges are kernel arguments inside the recorded steps
  layer_ranges_.clear();
  const int64_t context = kv_shape_.num_blocks * kv_shape_.block_size;
  for (size_t l = 0; l < per_layer.size(); ++l) {
    const SoftmaxRange r{per_layer[l].phi, per_layer[l].lo, per_layer[l].hi};
    const Status st = validate_softmax_range(r, std::max<int64_t>(context, 1));
    if (!st.is_ok())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("softmax range of layer {}: {}", l, st.message()));
    layer_ranges_.push_back(r);
  }
}

uint64_t CudaBackend::softmax_fallback_rows() const {
  if (cudaStreamQuery(stream_) == cudaSuccess) {  // idle: the exact count, at once
    unsigned long long n = 0;
    check(cudaMemcpyAsync(&n, fallback_counter_.view().data, sizeof(n), cudaMemcpyDeviceToHost, stream_),
          "fallback counter");
    check(cudaStreamSynchronize(stream_), "fallback counter");
    fallback_rows_seen_ = n;
    return n;
  }
  // Steps are queued (a step queued ahead while the engine publishes its load): the count as of
  // the last read that has landed, and a new read queued behind them, instead of a wait.
  if (fallback_read_pending_ && cudaEventQuery(fallback_read_) == cudaSuccess) {
    fallback_rows_seen_ = *fallback_host_;
    fallback_read_pending_ = false;
  }
  if (!fallback_read_pending_) {
    check(cudaMemcpyAsync(fallback_host_, fallback_counter_.view().data, sizeof(unsigned long long),
                          cudaMemcpyDeviceToHost, stream_),
          "fallback counter");
    check(cudaEventRecord(fallback_read_, stream_), "fallback counter event");
    fallback_read_pending_ = true;
  }
  return fallback_rows_seen_;
}

bool CudaBackend::start_kernel_timeline(std::string* why_not) { return start_kernel_records(why_not); }

std::vector<KernelSpan> CudaBackend::stop_kernel_timeline() { return stop_kernel_records(); }

}  // namespace fdpp::cuda
