// CPU reference ops, the pointwise and matrix ones: embed, rmsnorm, linear, RoPE, silu_mul, add.
// Plain loops, fp32 math. Loops run in parallel (OpenMP) only over independent outputs, each
// computed by one thread in a fixed order, so results are bitwise identical for any thread count.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_dot.h"
#include "backend/cpu/cpu_ops.h"
#include "fdpp/status.h"

namespace fdpp::cpu {

using detail::dot_f32;
using detail::kParallelMinWork;

namespace {

// A weight or table must be a float dtype with contiguous rows.
void check_float_matrix(const TensorView& t, const char* op, const char* what) {
  if (t.empty() || t.rank != 2) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} must be a rank-2 tensor, got rank {}", op, what, t.rank));
  }
  if (t.dtype == DType::kI32) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} must be F32, F16 or BF16, got I32", op, what));
  }
  if (t.stride[1] != 1 || t.stride[0] < t.shape[1]) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} {} must have contiguous rows", op, what, t.shape_string()));
  }
}

// A rank-1 (or any contiguous) vector of n float elements.
void check_float_vector(const TensorView& t, int64_t n, const char* op, const char* what) {
  if (t.empty() || t.numel() != n || !t.is_contiguous() || t.dtype == DType::kI32) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} must be a contiguous float vector of {} elements, got {} {}",
                            op, what, n, dtype_name(t.dtype), t.shape_string()));
  }
}

std::vector<float> to_float_vector(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_float(t.data, t.dtype, out.size(), out.data());
  return out;
}

}  // namespace

void embed(const TensorView& table, std::span<const int32_t> tokens, float* out) {
  check_float_matrix(table, "embed", "table");
  const int64_t V = table.dim(0);
  const int64_t D = table.dim(1);
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= V) {
      throw Error(ErrorCode::kOutOfRange,
                  fmt::format("embed: token id {} at index {} is outside the vocabulary [0, {})",
                              tokens[t], t, V));
    }
  }
  const auto T = static_cast<int64_t>(tokens.size());
#pragma omp parallel for schedule(static) if (T * D >= kParallelMinWork)
  for (int64_t t = 0; t < T; ++t) {
    convert_to_float(table.row(tokens[static_cast<size_t>(t)]), table.dtype,
                     static_cast<size_t>(D), out + t * D);
  }
}

void rmsnorm(const float* x, const TensorView& weight, float eps, int64_t rows, float* out) {
  const int64_t D = weight.numel();
  check_float_vector(weight, D, "rmsnorm", "weight");
  const std::vector<float> w = to_float_vector(weight);
#pragma omp parallel for schedule(static) if (rows * D >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * D;
    float* outr = out + r * D;
    const float variance = dot_f32(xr, xr, D) / static_cast<float>(D);
    const float inv_rms = 1.0f / std::sqrt(variance + eps);
    // (x * rsqrt(var + eps)) * weight, in this order, like HF LlamaRMSNorm.
    for (int64_t i = 0; i < D; ++i) outr[i] = (xr[i] * inv_rms) * w[static_cast<size_t>(i)];
  }
}

void linear(const float* x, int64_t M, const TensorView& w, const TensorView& bias, float* out) {
  check_float_matrix(w, "linear", "weight");
  const int64_t N = w.dim(0);
  const int64_t K = w.dim(1);
  if (!bias.empty()) check_float_vector(bias, N, "linear", "bias");
  if (M <= 0 || N == 0) return;

  // Tiles of kTileN weight rows are converted to fp32 once and reused for every row of x, so x
  // rows stay in cache across the tile; tiles are independent and split across threads.
  constexpr int64_t kTileN = 8;
  const int64_t tiles = (N + kTileN - 1) / kTileN;
  const bool weight_is_f32 = w.dtype == DType::kF32;
#pragma omp parallel if (M * N * K >= kParallelMinWork * 16)
  {
    std::vector<float> buf(weight_is_f32 ? 0 : static_cast<size_t>(kTileN * K));
    const float* rows[kTileN];
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kTileN;
      const int64_t nt = std::min(kTileN, N - n0);
      for (int64_t j = 0; j < nt; ++j) {
        if (weight_is_f32) {
          rows[j] = static_cast<const float*>(w.row(n0 + j));
        } else {
          float* dst = buf.data() + j * K;
          convert_to_float(w.row(n0 + j), w.dtype, static_cast<size_t>(K), dst);
          rows[j] = dst;
        }
      }
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float* om = out + m * N + n0;
        for (int64_t j = 0; j < nt; ++j) {
          float acc = dot_f32(xm, rows[j], K);
          if (!bias.empty()) {
            acc += load_as_float(bias.data, bias.dtype, static_cast<size_t>(n0 + j));
          }
          om[j] = acc;
        }
      }
    }
  }
}

void rope_rotate_half(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
                      std::span<const int32_t> positions, std::span<const float> inv_freq) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("rope: head_dim must be even and positive, got {}", head_dim));
  }
  const int64_t half = head_dim / 2;
  if (static_cast<int64_t>(inv_freq.size()) != half) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("rope: inv_freq has {} entries, head_dim {} needs {}", inv_freq.size(),
                            head_dim, half));
  }
  if (static_cast<int64_t>(positions.size()) != T) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("rope: {} positions for {} tokens", positions.size(), T));
  }
#pragma omp parallel if (T * n_heads * head_dim >= kParallelMinWork)
  {
    std::vector<float> cos_t(static_cast<size_t>(half));
    std::vector<float> sin_t(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      // HF computes the angle in fp32 (position * inv_freq) and takes its fp32 cos and sin.
      const auto pos = static_cast<float>(positions[static_cast<size_t>(t)]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[static_cast<size_t>(i)];
        cos_t[static_cast<size_t>(i)] = std::cos(angle);
        sin_t[static_cast<size_t>(i)] = std::sin(angle);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cos_t[static_cast<size_t>(i)];
          const float s = sin_t[static_cast<size_t>(i)];
          const float a = v[i];
          const float b = v[i + half];
          v[i] = a * c - b * s;
          v[i + half] = b * c + a * s;
        }
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace fdpp::cpu
