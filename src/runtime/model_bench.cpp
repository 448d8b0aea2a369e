#include "runtime/model_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "fdpp/status.h"
#include "runtime/device_sampling.h"
#include "runtime/sampler.h"

namespace fdpp {
namespace {

using Clock = std::chrono::steady_clock;

// A step for `batch` sequences, each with `new_tokens` tokens at positions [start, start+new).
// Sequence s owns blocks [s * blocks_per_seq, (s + 1) * blocks_per_seq).
StepBatch make_step(int64_t batch, int64_t start, int64_t new_tokens, int64_t blocks_per_seq, int64_t vocab,
                    uint64_t salt) {
  StepBatch b;
  b.max_blocks_per_seq = static_cast<int32_t>(blocks_per_seq);
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t i = 0; i < new_tokens; ++i) {
      b.tokens.push_back(static_cast<int32_t>((salt * 7919 + static_cast<uint64_t>(s * 131 + i * 17)) % static_cast<uint64_t>(vocab)));
      b.positions.push_back(static_cast<int32_t>(start + i));
      b.token_seq.push_back(static_cast<int32_t>(s));
    }
    b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size() - 1));
    for (int64_t k = 0; k < blocks_per_seq; ++k) b.block_tables.push_back(static_cast<int32_t>(s * blocks_per_seq + k));
  }
  return b;
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// One decode step and its tokens, the engine's way: drawn on the backend when it serves the
// parameters, else by one host sampler per sequence from the logits.
class StepSampler {
 public:
  StepSampler(const SamplingParams& params, int64_t batch)
      : params_(params), on_device_(device_sampling_supported(params)), tokens_(static_cast<size_t>(batch)) {
    for (int64_t b = 0; b < batch; ++b) {
      SamplingParams seeded = params;
      if (!seeded.seed) seeded.seed = static_cast<uint64_t>(b + 1);  // repeatable runs
      host_.emplace_back(seeded);
    }
  }
  // Whether step n + 1 can be queued before step n's tokens are taken, as the engine does: the
  // backend draws the tokens and feeds them on, and no penalty needs them on the host.
  bool overlaps(const LlamaModel& model) const {
    return on_device_ && params_.repetition_penalty == 1.0f && model.feeds_sampled_tokens();
  }
  // With overlaps(): queues a step (fed: its tokens are the last queued step's); take() takes the
  // oldest queued step's tokens. false: the backend does not draw these rows; the step has ended
  // with its logits on the host, and sample_on_host(batch) finishes it.
  bool queue(LlamaModel& model, StepBatch batch, uint64_t index, bool fed) {
    rows_.assign(tokens_.size(), device_sampling_row(params_, params_.seed.value_or(1), index));
    if (fed) batch.fed_tokens = static_cast<int32_t>(tokens_.size());
    return model.launch_sampled(batch, rows_, logits_);
  }
  void take(LlamaModel& model) { model.collect_sampled(tokens_); }
  // Returns whether the backend drew the tokens.
  bool step(LlamaModel& model, const StepBatch& batch, uint64_t index) {
    if (on_device_) {
      rows_.assign(tokens_.size(), device_sampling_row(params_, params_.seed.value_or(1), index));
      cuda::PenaltyTokens penalties;
      if (params_.repetition_penalty != 1.0f) {  // the same history as the host path's: this step's token
        offsets_.resize(tokens_.size() + 1);
        for (size_t b = 0; b <= tokens_.size(); ++b) offsets_[b] = static_cast<int64_t>(b);
        penalties = {std::span<const int32_t>(batch.tokens.data(), tokens_.size()), offsets_};
      }
      if (model.forward_sampled(batch, rows_, tokens_, logits_, penalties)) return true;
    } else {
      model.forward(batch, logits_);
    }
    sample_on_host(batch);
    return false;
  }
  // The host samplers over the copied logits of `batch`.
  void sample_on_host(const StepBatch& batch) {
    const auto V = logits_.size() / tokens_.size();
    for (size_t b = 0; b < tokens_.size(); ++b) {
      const std::span<const int32_t> previous(&batch.tokens[b], 1);  // the penalty's history: this step's token
      tokens_[b] = host_[b].sample(std::span<float>(logits_.data() + b * V, V), previous);
    }
  }

 private:
  SamplingParams params_;
  bool on_device_;
  std::vector<Sampler> host_;
  std::vector<cuda::DeviceSamplingRow> rows_;
  std::vector<int64_t> offsets_;  // the penalty's: one id per row
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

}  // namespace

std::vector<ModelBenchRow> run_model_bench(LlamaModel& model, Backend& backend, const ModelBenchOptions& o,
                                           const std::function<void(size_t, size_t)>& progress) {
  if (o.decode_steps <= 0)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("decode steps must be positive, found {}", o.decode_steps));
  const ModelConfig& c = model.config();
  const int64_t context_limit = c.context_limit();
  const double ceiling = backend.read_bandwidth_ceiling();
  const size_t total = o.prefill_tokens.size() + o.batches.size() * o.contexts.size();
  std::vector<ModelBenchRow> rows;
  std::vector<float> logits;
  auto kv_shape = [&](int64_t sequences, int64_t tokens_each) {
    const int64_t blocks_per_seq = (tokens_each + o.kv_block_size - 1) / o.kv_block_size;
    return KvCacheShape{c.num_hidden_layers, sequences * blocks_per_seq, o.kv_block_size, c.num_key_value_heads,
                        c.head_dim};
  };
  auto done = [&] {
    if (progress) progress(rows.size(), total);
  };

  for (int64_t T : o.prefill_tokens) {
    ModelBenchRow r;
    r.phase = "prefill";
    r.tokens = T;
    if (T > context_limit) {
      r.skipped = fmt::format("longer than the context ({})", context_limit);
    } else {
      try {
        const KvCacheShape shape = kv_shape(1, T);
        backend.init_kv_cache(shape);
        const StepBatch step = make_step(1, 0, T, shape.num_blocks, c.vocab_size, 1);
        model.forward(step, logits);  // warm-up: plans, allocations, library heuristics
        const auto t0 = Clock::now();
        model.forward(step, logits);
        r.ms = ms_since(t0);
        r.tokens_per_s = static_cast<double>(T) / (r.ms / 1e3);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kOutOfMemory) throw;
        r.skipped = "out of memory";
      }
    }
    rows.push_back(r);
    done();
  }

  for (int64_t B : o.batches) {
    for (int64_t C : o.contexts) {
      ModelBenchRow r;
      r.phase = "decode";
      r.batch = B;
      r.tokens = C;
      const int64_t need = C + o.decode_steps + 1 + std::max<int64_t>(o.timeline_steps, 0);
      if (need > context_limit) {
        r.skipped = fmt::format("context + steps beyond the model's {}", context_limit);
      } else {
        try {
          const KvCacheShape shape = kv_shape(B, need);
          backend.init_kv_cache(shape);
          backend.randomize_kv_cache(static_cast<uint64_t>(B * 1000003 + C));  // positions [0, C) hold random K/V
          const int64_t blocks_per_seq = shape.num_blocks / B;
          std::vector<double> times;
          StepSampler sampler(o.sampling, B);
          auto step_at = [&](int64_t s) {
            return make_step(B, C + s, 1, blocks_per_seq, c.vocab_size, static_cast<uint64_t>(s));
          };
          // Steps first..last, each timed from the end of the one before (host and device work
          // together, as a generation loop sees them); queued one ahead where the engine would.
          auto run_steps = [&](int64_t first, int64_t last, const std::function<void(int64_t, double)>& done_step) {
            auto t0 = Clock::now();
            if (sampler.overlaps(model)) {
              if (sampler.queue(model, step_at(first), static_cast<uint64_t>(first), false)) {
                r.tokens_on_backend = true;
                r.overlapped = true;
                for (int64_t s = first; s <= last; ++s) {
                  if (s < last && !sampler.queue(model, step_at(s + 1), static_cast<uint64_t>(s + 1), true))
                    throw Error(ErrorCode::kInternal, "model bench: the backend stopped drawing the rows it drew");
                  sampler.take(model);
                  done_step(s, ms_since(t0));
                  t0 = Clock::now();
                }
                return;
              }
              sampler.sample_on_host(step_at(first));  // the backend does not draw these rows
              done_step(first++, ms_since(t0));
              t0 = Clock::now();
            }
            for (int64_t s = first; s <= last; ++s, t0 = Clock::now()) {
              r.tokens_on_backend = sampler.step(model, step_at(s), static_cast<uint64_t>(s));
              done_step(s, ms_since(t0));
            }
          };
          run_steps(0, o.decode_steps, [&](int64_t s, double ms) {
            if (s > 0) times.push_back(ms);  // step 0 warms up
          });
          if (o.timeline_steps > 0) {  // after the timed steps, so that recording cannot slow them
            if (backend.start_kernel_timeline(&r.timeline_note)) {
              run_steps(o.decode_steps + 1, o.decode_steps + o.timeline_steps, [](int64_t, double) {});
              r.timeline = attribute_steps(backend.stop_kernel_timeline(), static_cast<int>(o.timeline_steps));
            }
          }
          std::sort(times.begin(), times.end());
          r.ms = times[times.size() / 2];
          r.tokens_per_s = static_cast<double>(B) / (r.ms / 1e3);
          r.bytes = static_cast<double>(model.weight_bytes_per_step()) +
                    static_cast<double>(B) * static_cast<double>(C) * static_cast<double>(model.kv_bytes_per_token());
          r.gbps = r.bytes / (r.ms / 1e3) / 1e9;
          r.ceiling_fraction = ceiling > 0 ? r.gbps * 1e9 / ceiling : 0.0;
        } catch (const Error& e) {
          if (e.code() != ErrorCode::kOutOfMemory) throw;
          r.skipped = "out of memory";
        }
      }
      rows.push_back(r);
      done();
    }
  }
  return rows;
}

}  // namespace fdpp
