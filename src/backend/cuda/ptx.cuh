// Thin wrappers over PTX instructions the tensor-core kernels share (sm_80+; the tiled prefill
// attention, the flat GEMM): cp.async 16-byte copies into shared memory, streaming 16-byte loads,
// ldmatrix, mma.sync m16n8k16 with fp32 accumulators, ex2.approx.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), lane = 4 * g + tig:
//   A 16x16 (row-major):  a0 = A[g][2tig, 2tig+1], a1 = A[g+8][2tig..], a2 = A[g][8+2tig..], a3 = A[g+8][8+2tig..]
//   B 16x8  (k x n):      b0 = B[2tig, 2tig+1][g], b1 = B[8+2tig, 9+2tig][g]
//   C 16x8  (fp32):       c0, c1 = C[g][2tig, 2tig+1], c2, c3 = C[g+8][2tig, 2tig+1]
// The lower-indexed element of a pair sits in the low 16 bits of its register.
// ldmatrix .x4: lane 8i + r gives the address of row r of matrix i; register i of lane 4g + tig
// receives matrix i's row g, elements 2tig and 2tig+1 (with .trans: column g, rows 2tig, 2tig+1).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace fdpp::cuda::detail {

// Shared-memory operands are 32-bit shared-window addresses (smem_u32), so that constant offsets
// fold into the instructions' immediates.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 zero bytes at a shared-memory address (16-byte aligned).
__device__ __forceinline__ void st_shared_zero_16(uint32_t smem) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(smem), "r"(0u) : "memory");
}
// 16 bytes global -> shared without passing through registers; when !valid, writes 16 zero bytes
// (src-size 0: nothing is read from src, which must still be a valid address).
__device__ __forceinline__ void cp_async_16(uint32_t smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem),
               "r"(valid ? 16 : 0)
               : "memory");
}
// The same through L1 (.ca): for data other CTAs of the SM read again.
__device__ __forceinline__ void cp_async_16_ca(uint32_t smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(valid ? 16 : 0)
               : "memory");
}
// 16 bytes of data read once (weights): no L1 allocation, and L2 fetches the 256 bytes around each
// miss, so that pieces a few lanes read arrive from HBM in whole 256-byte runs.
__device__ __forceinline__ uint4 load_stream_16(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { cp_async_wait<0>(); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
}

// d += A . B with A = {a[0..3]}, B = {b0, b1}; the element type is the tag's.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x (MUFU.EX2; inputs below -126 give 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats as a bf16 pair (lo in the low half), and back.
__device__ __forceinline__ uint32_t bf16x2_bits(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ float bf16_lo_float(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi_float(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// An fp16 pair split exactly into bf16 pairs hi + lo (fp16 has 3 more significand bits than bf16,
// and the remainder f - hi needs at most those 3).
__device__ __forceinline__ void split_f16x2(uint32_t h2, uint32_t& hi, uint32_t& lo) {
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h2));
  hi = bf16x2_bits(f.x, f.y);
  lo = bf16x2_bits(f.x - bf16_lo_float(hi), f.y - bf16_hi_float(hi));
}

}  // namespace fdpp::cuda::detail
