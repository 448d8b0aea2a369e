#include "backend/cuda/gemm/cublaslt_linear.h"

#include <fmt/format.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_switch.h"

namespace fdpp::cuda {
namespace {

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF32: return CUDA_R_32F;
    default: throw Error(ErrorCode::kUnsupported, fmt::format("cuBLASLt linear: dtype {}", dtype_name(d)));
  }
}

}  // namespace

CublasLtLinear::CublasLtLinear(cudaStream_t stream) : stream_(stream) {
  check(cublasLtCreate(&handle_), "cublasLtCreate");
  check(cudaMalloc(&workspace_, workspace_bytes_), "cuBLASLt workspace");
  if (env_switch("FDPP_CUBLASLT_AUTOTUNE") == 0) autotune_ = false;
}

CublasLtLinear::~CublasLtLinear() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cudaFree(workspace_);
  cudaFree(scratch_);
  cublasLtDestroy(handle_);
}

void CublasLtLinear::set_bias_pointer(Plan& p, const TensorView& bias) {
  const void* bias_ptr = bias.data;
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr)),
        "bias pointer");
}

bool CublasLtLinear::reserve_scratch(size_t out_bytes) {
  if (out_bytes <= scratch_bytes_) return true;
  cudaFree(scratch_);
  scratch_ = nullptr;
  scratch_bytes_ = 0;
  if (cudaMalloc(&scratch_, out_bytes) != cudaSuccess) {
    (void)cudaGetLastError();  // out of memory: the heuristic's first algorithm serves
    scratch_ = nullptr;
    return false;
  }
  scratch_bytes_ = out_bytes;
  return true;
}

double CublasLtLinear::time_algorithm(Plan& p, const cublasLtMatmulAlgo_t& algo, const TensorView& x,
                                      const TensorView& w) {
  const float alpha = 1.0f, beta = 0.0f;
  auto launch = [&] {
    return cublasLtMatmul(handle_, p.desc, &alpha, w.data, p.a, x.data, p.b, &beta, scratch_, p.c, scratch_, p.c,
                          &algo, workspace_, workspace_bytes_, stream_);
  };
  if (launch() != CUBLAS_STATUS_SUCCESS) {
    (void)cudaGetLastError();
    return -1.0;
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  check(cudaEventCreate(&start), "autotune event");
  check(cudaEventCreate(&stop), "autotune event");
  check(cudaEventRecord(start, stream_), "autotune event");
  bool ok = true;
  for (int i = 0; i < kAutotuneLaunches && ok; ++i) ok = launch() == CUBLAS_STATUS_SUCCESS;
  check(cudaEventRecord(stop, stream_), "autotune event");
  check(cudaEventSynchronize(stop), "autotune timing");
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, start, stop), "autotune timing");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (!ok) {
    (void)cudaGetLastError();
    return -1.0;
  }
  return ms * 1e3 / kAutotuneLaunches;
}

CublasLtLinear::Plan& CublasLtLinear::plan_for(const Key& key, const TensorView& x, const TensorView& w,
                                               const TensorView& bias) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  const auto [M, N, K, in_type, out_type, has_bias] = key;
  const auto in = static_cast<cudaDataType_t>(in_type), out = static_cast<cudaDataType_t>(out_type);
  Plan p;
  // Column-major view: out^T [N, M] = W [N, K] (stored as col-major [K, N], transposed) . x^T [K, M].
  check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)), "transa");
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)), "transb");
  if (has_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "epilogue");
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &in, sizeof(in)), "bias type");
  }
  check(cublasLtMatrixLayoutCreate(&p.a, in, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K), "layout A");
  check(cublasLtMatrixLayoutCreate(&p.b, in, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K), "layout B");
  check(cublasLtMatrixLayoutCreate(&p.c, out, static_cast<uint64_t>(N), static_cast<uint64_t>(M), N), "layout C");

  cublasLtMatmulPreference_t pref;
  check(cublasLtMatmulPreferenceCreate(&pref), "preference");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                             sizeof(workspace_bytes_)), "workspace pref");
  cublasLtMatmulHeuristicResult_t results[kAutotuneCandidates] = {};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref,
                                                           kAutotuneCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw Error(ErrorCode::kUnsupported,
                fmt::format("cuBLASLt has no algorithm for linear M={} N={} K={}", M, N, K));
  p.algo = results[0].algo;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream_, &capture), "capture status");
  const size_t out_bytes = static_cast<size_t>(M * N) * (out == CUDA_R_32F ? 4 : 2);
  if (autotune_ && found > 1 && M <= kAutotuneMaxM && capture == cudaStreamCaptureStatusNone &&
      reserve_scratch(out_bytes)) {
    if (has_bias) set_bias_pointer(p, bias);  // the timed runs' epilogue reads it from the descriptor
    double best = -1.0;
    for (int i = 0; i < found; ++i) {
      const double us = time_algorithm(p, results[i].algo, x, w);
      if (us >= 0 && (best < 0 || us < best)) {
        best = us;
        p.algo = results[i].algo;
      }
    }
  }
  return plans_.emplace(key, p).first->second;
}

void CublasLtLinear::run(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out,
                         bool accumulate) {
  const int64_t K = w.dim(1), N = w.dim(0);
  const int64_t M = x.numel() / K;
  if (x.dtype != w.dtype || x.numel() != M * K || out.numel() != M * N)
    throw Error(ErrorCode::kInternal,
                fmt::format("linear: x {} {} . w {} {} -> out {} do not agree", x.shape_string(),
                            dtype_name(x.dtype), w.shape_string(), dtype_name(w.dtype), out.shape_string()));
  if (M == 0) return;
  const Key key{M, N, K, static_cast<int>(cuda_type(x.dtype)), static_cast<int>(cuda_type(out.dtype)), !bias.empty()};
  Plan& p = plan_for(key, x, w, bias);
  if (!bias.empty()) set_bias_pointer(p, bias);
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  check(cublasLtMatmul(handle_, p.desc, &alpha, w.data, p.a, x.data, p.b, &beta, out.data, p.c, out.data, p.c,
                       &p.algo, workspace_, workspace_bytes_, stream_),
        "cublasLtMatmul");
}

}  // namespace fdpp::cuda
