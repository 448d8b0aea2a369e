// Random test inputs drawn in parallel, the same values for any thread count.
// Why: the GPU tests draw fresh weights for every case. One std::normal_distribution took 1.7 s
// per [22016, 4096] weight (one core, with the rounding), and GpuFlatGemm.GatedSiluEpilogueMatchesCpu
// draws 36 of them: 88 s of the GPU suite's ~8 minutes on the GPU machine, where time is scarce.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace fdpp::test {

// Values per chunk: each chunk has its own generator, seeded by one draw of the caller's rng in
// chunk order, so the result depends only on the caller's rng state and v.size().
inline constexpr size_t kFillChunk = size_t{1} << 16;

// v[i] = round(normal(mean, stddev)) for every i; `round` maps a float to the value the device
// will hold (its dtype's rounding), applied in the same parallel pass. Advances rng by one draw
// per chunk.
template <typename Round>
void fill_normal_chunked(std::vector<float>& v, std::mt19937& rng, float stddev, float mean, Round round) {
  const size_t chunks = (v.size() + kFillChunk - 1) / kFillChunk;
  std::vector<uint32_t> seeds(chunks);
  for (uint32_t& s : seeds) s = static_cast<uint32_t>(rng());
  const auto n_chunks = static_cast<int64_t>(chunks);
#pragma omp parallel for schedule(static) if (n_chunks > 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::mt19937 local(seeds[static_cast<size_t>(c)]);
    std::normal_distribution<float> d(mean, stddev);
    const size_t begin = static_cast<size_t>(c) * kFillChunk;
    const size_t end = std::min(v.size(), begin + kFillChunk);
    for (size_t i = begin; i < end; ++i) v[i] = round(d(local));
  }
}

inline void fill_normal_chunked(std::vector<float>& v, std::mt19937& rng, float stddev, float mean = 0.0f) {
  fill_normal_chunked(v, rng, stddev, mean, [](float x) { return x; });
}

}  // namespace fdpp::test
