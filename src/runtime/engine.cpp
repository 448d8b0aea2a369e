// EngineImpl: requests -> sequences -> one StepBatch per step -> LlamaModel::forward -> sampling.
// Scheduling: every running sequence gets its decode token each step; prompt tokens fill the rest
// of the step's token budget in chunks; waiting requests are admitted while the batch has room
// and the KV cache has blocks for the whole request (prompt + max_tokens), so none is preempted.
// Steps queued ahead: when the backend draws the tokens and can feed them to the next step
// (Backend::feeds_sampled_tokens), a decode step of the same sequences is queued before this
// step's tokens reach the host, so the device never waits for the host between steps. A row
// whose sequence ended meanwhile (EOS, stop string, cancel) is computed and dropped.
#include "fdpp/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <random>

#include "backend/backend.h"
#include "core/progress.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "runtime/device_sampling.h"
#include "runtime/kv_blocks.h"
#include "runtime/sampler.h"
#include "runtime/softmax_calibration.h"
#include "runtime/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// 64 bits from the OS's entropy source: the GPU sampler's seed for requests without one.
uint64_t fresh_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

struct Sequence {
  uint64_t id = 0;
  GenerationRequest request;
  TokenCallback callback;
  std::vector<int32_t> tokens;        // prompt + generated
  int64_t num_cached = 0;             // tokens whose K/V are in the cache
  std::vector<int32_t> blocks;        // block table
  Sampler sampler;
  // The GPU sampler serves this request (valid parameters): tokens are drawn on the device from
  // (device_seed, token index) whenever every row of the step can be.
  bool device_sampling = false;
  uint64_t device_seed = 0;
  // With a repetition penalty: the distinct ids of `tokens`, for the GPU sampler.
  bool penalised = false;
  DistinctTokens distinct;
  std::optional<StreamDecoder> decoder;
  StopMatcher stop_matcher;
  FinishReason finish = FinishReason::kNone;
  Clock::time_point submitted, first_token, last_token;

  Sequence(uint64_t id_, GenerationRequest req, TokenCallback cb, const Tokenizer& tok)
      : id(id_),
        request(std::move(req)),
        callback(std::move(cb)),
        tokens(request.prompt),
        sampler(request.sampling),
        device_sampling(device_sampling_supported(request.sampling)),
        device_seed(request.sampling.seed.value_or(fresh_seed())),
        penalised(request.sampling.repetition_penalty != 1.0f),
        stop_matcher(request.stop.stop_strings),
        submitted(Clock::now()) {
    decoder.emplace(tok, request.prompt);
    if (penalised) distinct.add(request.prompt);
  }
  int64_t generated() const { return static_cast<int64_t>(tokens.size() - request.prompt.size()); }
};

// Appends the sequence's block-table row to the step, padded with -1 to b.max_blocks_per_seq.
void add_block_table_row(StepBatch& b, const Sequence& s) {
  b.block_tables.insert(b.block_tables.end(), s.blocks.begin(), s.blocks.end());
  b.block_tables.insert(b.block_tables.end(), static_cast<size_t>(b.max_blocks_per_seq) - s.blocks.size(), -1);
}

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(const EngineOptions& options);

  const Tokenizer& tokenizer() const override { return tokenizer_; }
  const ModelConfig& config() const override { return config_; }
  std::string backend_name() const override { return backend_->name(); }
  int64_t max_context() const override { return max_context_; }

  uint64_t submit(GenerationRequest request, TokenCallback callback) override;
  void cancel(uint64_t request_id) override;
  bool step() override;
  bool idle() const override { return running_.empty() && waiting_.empty() && ahead_ids_.empty(); }
  RequestStats stats(uint64_t request_id) const override;
  EngineLoad load() const override;

  size_t weight_bytes_per_step() const override { return model_->weight_bytes_per_step(); }
  size_t kv_bytes_per_token() const override { return model_->kv_bytes_per_token(); }
  double read_bandwidth_ceiling() const override { return backend_->read_bandwidth_ceiling(); }

 private:
  void admit_waiting();
  StepBatch build_step(std::vector<Sequence*>& with_logits);
  // The longest block table of the running sequences: the width of a step's block-table rows.
  int32_t max_blocks_per_sequence() const;
  // sample_rows_ and the penalty ids of `rows` for the GPU sampler; `ahead`: for the token after
  // the one being drawn. The penalties, or none.
  cuda::PenaltyTokens sampling_inputs(const std::vector<Sequence*>& rows, uint64_t ahead);
  // Queues the decode step after the one in flight for `rows` (its sampled rows, in order), fed
  // with its tokens, when every row can take one more token without the host's view of this one.
  void queue_step_ahead(const std::vector<Sequence*>& rows);
  // Takes the tokens of the step queued ahead (queueing the next one first where it can).
  bool finish_step_ahead();
  // With a sampled step in flight for `rows`: queues the next one where may_queue and it can, then
  // takes the step in flight's tokens and hands them out (also when queueing failed; then rethrows).
  void queue_ahead_and_take(const std::vector<Sequence*>& rows, bool may_queue);
  // Hands out the step's tokens; rows[r] null: the sequence ended, its token is dropped.
  void hand_out(const std::vector<Sequence*>& rows, bool sampled);
  void on_token(Sequence& seq, int32_t token);
  void emit(Sequence& seq, int32_t token, std::string text, FinishReason finish);
  void retire_finished();
  RequestStats stats_of(const Sequence& seq) const;

  EngineOptions options_;
  ModelConfig config_;
  Tokenizer tokenizer_;
  WeightStore store_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::optional<KvBlockAllocator> blocks_;
  int64_t max_context_ = 0;
  std::vector<int64_t> model_eos_;

  uint64_t next_id_ = 1;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::map<uint64_t, RequestStats> finished_stats_;
  std::vector<float> logits_;
  std::vector<cuda::DeviceSamplingRow> sample_rows_;  // [R] this step's GPU sampling parameters
  std::vector<int32_t> sampled_;                      // [R] tokens the backend drew
  std::vector<int32_t> penalty_ids_;                  // this step's rows' distinct previous ids
  std::vector<int64_t> penalty_offsets_;              // [R + 1] row r's in [offsets[r], offsets[r + 1])
  std::vector<uint64_t> ahead_ids_;                   // [R] sequence ids of the step queued ahead, in row order
  int64_t steps_queued_ahead_ = 0;
};

ModelConfig load_config_checked(const EngineOptions& options) {
  if (!std::filesystem::is_directory(options.model_dir))
    throw Error(ErrorCode::kNotFound,
                fmt::format("model directory '{}' does not exist", options.model_dir.string()));
  return load_model_config(options.model_dir);
}

EngineImpl::EngineImpl(const EngineOptions& options)
    : options_(options),
      config_(load_config_checked(options)),
      tokenizer_(Tokenizer::load(options.model_dir)),
      store_(WeightStore::open(options.model_dir)) {
  if (options.max_batch_size <= 0 || options.max_step_tokens <= 0 || options.kv_block_size <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                "engine: max_batch_size, max_step_tokens and kv_block_size must be positive");
  if (options.max_waiting < 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("engine: max_waiting must be >= 0 (0 = unbounded), found {}", options.max_waiting));
  const LlamaWeights host_weights = bind_llama_weights(store_, config_);
  if (options.show_progress) {
    ProgressBar bar("loading " + options.model_dir.filename().string(), store_.total_bytes());
    store_.prefetch([&](size_t done, size_t) { bar.update(done); });
    bar.finish();
  }
  backend_ = create_backend(parse_backend_kind(options.backend),
                            parse_activation_dtype(options.dtype, host_weights.embed.dtype));
  model_ = std::make_unique<LlamaModel>(config_, host_weights, *backend_);

  max_context_ = config_.context_limit();
  if (options.max_context > 0) max_context_ = std::min(max_context_, options.max_context);
  const int64_t kv_tokens =
      options.kv_cache_tokens > 0 ? options.kv_cache_tokens : options.max_batch_size * max_context_;
  const int64_t num_blocks = (kv_tokens + options.kv_block_size - 1) / options.kv_block_size;
  blocks_.emplace(num_blocks, options.kv_block_size);
  KvCacheShape kv;
  kv.num_layers = config_.num_hidden_layers;
  kv.num_blocks = num_blocks;
  kv.block_size = options.kv_block_size;
  kv.num_kv_heads = config_.num_key_value_heads;
  kv.head_dim = config_.head_dim;
  backend_->init_kv_cache(kv);
  // FlashDecoding++'s unified max values, when `fdpp calibrate` wrote them for this model.
  if (const auto path = options.model_dir / kSoftmaxRangeFile; std::filesystem::exists(path))
    backend_->set_softmax_ranges(per_layer_ranges(read_softmax_calibration(path, config_.num_hidden_layers),
                                                  config_.num_hidden_layers));

  model_eos_ = config_.eos_token_ids;
  for (int32_t id : tokenizer_.eos_ids())
    if (std::find(model_eos_.begin(), model_eos_.end(), id) == model_eos_.end()) model_eos_.push_back(id);
}

uint64_t EngineImpl::submit(GenerationRequest request, TokenCallback callback) {
  const auto n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt == 0) throw Error(ErrorCode::kInvalidArgument, "the prompt is empty (0 tokens)");
  if (request.stop.max_tokens <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("max_tokens must be at least 1, found {}", request.stop.max_tokens));
  if (n_prompt >= max_context_)
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("the prompt has {} tokens; the context holds {} (prompt + at least one "
                            "generated token must fit)", n_prompt, max_context_));
  if (n_prompt + request.stop.max_tokens > max_context_)
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("prompt ({} tokens) + max_tokens ({}) = {} exceeds the context of {} tokens",
                            n_prompt, request.stop.max_tokens, n_prompt + request.stop.max_tokens,
                            max_context_));
  const int64_t vocab = config_.vocab_size;
  for (size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab)
      throw Error(ErrorCode::kOutOfRange, fmt::format("prompt token {} at index {} is outside the "
                                                      "vocabulary [0, {})", request.prompt[i], i, vocab));
  if (blocks_->blocks_for_tokens(n_prompt + request.stop.max_tokens) > blocks_->num_blocks())
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("the request needs {} KV-cache tokens; the cache holds {}",
                            n_prompt + request.stop.max_tokens,
                            blocks_->num_blocks() * blocks_->block_size()));
  validate(request.sampling);
  if (options_.max_waiting > 0 && static_cast<int64_t>(waiting_.size()) >= options_.max_waiting) {
    admit_waiting();  // between steps a place in the batch may have opened
    if (static_cast<int64_t>(waiting_.size()) >= options_.max_waiting)
      throw QueueFullError(fmt::format("{} requests are already waiting for a place in the batch "
                                       "(the queue holds {})", waiting_.size(), options_.max_waiting));
  }
  if (request.stop.eos_ids.empty()) request.stop.eos_ids = model_eos_;
  const uint64_t id = next_id_++;
  waiting_.push_back(std::make_unique<Sequence>(id, std::move(request), std::move(callback), tokenizer_));
  return id;
}

void EngineImpl::cancel(uint64_t request_id) {
  for (auto& s : running_)
    if (s->id == request_id && s->finish == FinishReason::kNone) emit(*s, -1, {}, FinishReason::kCancelled);
  for (auto& s : waiting_)
    if (s->id == request_id && s->finish == FinishReason::kNone) emit(*s, -1, {}, FinishReason::kCancelled);
  std::erase_if(waiting_, [](const auto& s) { return s->finish != FinishReason::kNone; });
  retire_finished();
}

void EngineImpl::admit_waiting() {
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_batch_size) {
    Sequence& s = *waiting_.front();
    const int64_t need = blocks_->blocks_for_tokens(static_cast<int64_t>(s.tokens.size()) +
                                                    s.request.stop.max_tokens);
    if (!blocks_->allocate(need, s.blocks)) break;  // wait for running sequences to free blocks
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

int32_t EngineImpl::max_blocks_per_sequence() const {
  int32_t max_blocks = 0;
  for (const auto& s : running_) max_blocks = std::max(max_blocks, static_cast<int32_t>(s->blocks.size()));
  return max_blocks;
}

StepBatch EngineImpl::build_step(std::vector<Sequence*>& with_logits) {
  StepBatch b;
  b.max_blocks_per_seq = max_blocks_per_sequence();
  // Decode tokens first (one per sequence, always), then prompt chunks in arrival order within
  // what is left of the step's token budget.
  std::vector<Sequence*> order;
  auto pending = [](const Sequence* s) { return static_cast<int64_t>(s->tokens.size()) - s->num_cached; };
  for (auto& s : running_) if (pending(s.get()) == 1) order.push_back(s.get());
  int64_t budget = options_.max_step_tokens - static_cast<int64_t>(order.size());
  for (auto& s : running_) if (pending(s.get()) > 1) order.push_back(s.get());
  int32_t seq_index = 0;
  for (Sequence* s : order) {
    int64_t take = pending(s);
    if (take > 1) {
      take = std::min(take, budget);
      if (take <= 0) continue;
      budget -= take;
    }
    for (int64_t i = 0; i < take; ++i) {
      const int64_t pos = s->num_cached + i;
      b.tokens.push_back(s->tokens[static_cast<size_t>(pos)]);
      b.positions.push_back(static_cast<int32_t>(pos));
      b.token_seq.push_back(seq_index);
    }
    add_block_table_row(b, *s);
    s->num_cached += take;
    if (s->num_cached == static_cast<int64_t>(s->tokens.size())) {
      b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size() - 1));
      with_logits.push_back(s);
    }
    ++seq_index;
  }
  return b;
}

cuda::PenaltyTokens EngineImpl::sampling_inputs(const std::vector<Sequence*>& rows, uint64_t ahead) {
  sample_rows_.clear();
  for (const Sequence* s : rows)
    sample_rows_.push_back(device_sampling_row(s->request.sampling, s->device_seed,
                                               static_cast<uint64_t>(s->generated()) + ahead));
  penalty_ids_.clear();
  penalty_offsets_.assign(1, 0);
  bool any_penalty = false;
  for (const Sequence* s : rows) {
    if (s->penalised) {
      const auto ids = s->distinct.ids();
      penalty_ids_.insert(penalty_ids_.end(), ids.begin(), ids.end());
      any_penalty = true;
    }
    penalty_offsets_.push_back(static_cast<int64_t>(penalty_ids_.size()));
  }
  return any_penalty ? cuda::PenaltyTokens{penalty_ids_, penalty_offsets_} : cuda::PenaltyTokens{};
}

bool EngineImpl::step() {
  if (!ahead_ids_.empty()) return finish_step_ahead();
  admit_waiting();
  if (running_.empty()) return !waiting_.empty();
  std::vector<Sequence*> with_logits;
  const StepBatch batch = build_step(with_logits);
  // Tokens are drawn on the backend when it has a sampler and every row's request allows it;
  // otherwise the logits come to the host sampler.
  const bool on_device = !with_logits.empty() && std::all_of(with_logits.begin(), with_logits.end(),
                                                             [](const Sequence* s) { return s->device_sampling; });
  bool sampled = false;
  if (on_device) {
    const cuda::PenaltyTokens penalties = sampling_inputs(with_logits, 0);
    sampled = model_->launch_sampled(batch, sample_rows_, logits_, penalties);
    if (sampled) queue_ahead_and_take(with_logits, true);
  } else {
    model_->forward(batch, logits_);
  }
  if (!sampled) hand_out(with_logits, false);
  retire_finished();
  return !idle();
}

void EngineImpl::queue_ahead_and_take(const std::vector<Sequence*>& rows, bool may_queue) {
  std::exception_ptr failed;
  if (may_queue) {
    try {
      queue_step_ahead(rows);
    } catch (...) {  // the step in flight is still queued: take it, so the next step's tokens are its own
      failed = std::current_exception();
    }
  }
  sampled_.resize(rows.size());
  model_->collect_sampled(sampled_);
  hand_out(rows, true);
  if (failed) {
    retire_finished();
    std::rethrow_exception(failed);
  }
}

void EngineImpl::queue_step_ahead(const std::vector<Sequence*>& rows) {
  if (!model_->feeds_sampled_tokens()) return;
  // Only a step that the next one would repeat: every running sequence drew a token (no prompt
  // chunks left), no request can be admitted, and each row's next token is free of what this
  // one will be (no penalty over it; not the last by length, so the sequence goes on unless it
  // stops on EOS or a stop string).
  if (rows.size() != running_.size()) return;
  if (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_batch_size) return;
  for (const Sequence* s : rows)
    if (s->finish != FinishReason::kNone || !s->device_sampling || s->penalised ||
        s->generated() + 1 >= s->request.stop.max_tokens || s->num_cached != static_cast<int64_t>(s->tokens.size()))
      return;
  StepBatch b;
  b.max_blocks_per_seq = max_blocks_per_sequence();  // rows are the running sequences
  for (size_t r = 0; r < rows.size(); ++r) {
    Sequence& s = *rows[r];
    b.tokens.push_back(0);  // fed: the token being drawn for row r
    b.positions.push_back(static_cast<int32_t>(s.tokens.size()));
    b.token_seq.push_back(static_cast<int32_t>(r));
    b.logit_rows.push_back(static_cast<int32_t>(r));
    add_block_table_row(b, s);
  }
  b.fed_tokens = static_cast<int32_t>(rows.size());
  const cuda::PenaltyTokens none = sampling_inputs(rows, 1);
  if (!model_->launch_sampled(b, sample_rows_, logits_, none))
    throw Error(ErrorCode::kInternal, "a step queued ahead was not sampled on the backend that sampled the one before");
  for (Sequence* s : rows) {
    ++s->num_cached;  // the fed token, once it is appended
    ahead_ids_.push_back(s->id);
  }
  ++steps_queued_ahead_;
}

bool EngineImpl::finish_step_ahead() {
  std::vector<uint64_t> ids;
  ids.swap(ahead_ids_);
  std::vector<Sequence*> rows(ids.size(), nullptr);
  bool all_running = true;
  for (size_t r = 0; r < ids.size(); ++r) {
    for (auto& s : running_)
      if (s->id == ids[r] && s->finish == FinishReason::kNone) rows[r] = s.get();
    all_running = all_running && rows[r] != nullptr;
  }
  queue_ahead_and_take(rows, all_running);
  retire_finished();
  return !idle();
}

void EngineImpl::hand_out(const std::vector<Sequence*>& rows, bool sampled) {
  const auto V = static_cast<size_t>(config_.vocab_size);
  for (size_t r = 0; r < rows.size(); ++r) {
    Sequence* seq = rows[r];
    if (seq == nullptr || seq->finish != FinishReason::kNone) continue;
    on_token(*seq, sampled ? sampled_[r] : seq->sampler.sample(std::span<float>(logits_.data() + r * V, V), seq->tokens));
  }
}

void EngineImpl::on_token(Sequence& seq, int32_t token) {
  const auto now = Clock::now();
  if (seq.generated() == 0) seq.first_token = now;
  seq.last_token = now;
  const auto& eos = seq.request.stop.eos_ids;
  if (!seq.request.stop.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
    emit(seq, token, {}, FinishReason::kEos);
    return;
  }
  seq.tokens.push_back(token);
  if (seq.penalised) seq.distinct.add(token);
  std::string text = seq.stop_matcher.push(seq.decoder->push(token));
  if (seq.stop_matcher.stopped()) {
    emit(seq, token, std::move(text), FinishReason::kStopString);
  } else if (seq.generated() >= seq.request.stop.max_tokens) {
    emit(seq, token, std::move(text), FinishReason::kLength);
  } else {
    emit(seq, token, std::move(text), FinishReason::kNone);
  }
}

void EngineImpl::emit(Sequence& seq, int32_t token, std::string text, FinishReason finish) {
  if (finish != FinishReason::kNone && finish != FinishReason::kStopString &&
      !seq.stop_matcher.stopped())
    text += seq.stop_matcher.push(seq.decoder->flush()) + seq.stop_matcher.flush();
  seq.finish = finish;
  TokenEvent ev;
  ev.request_id = seq.id;
  ev.token = token;
  ev.text = std::move(text);
  ev.finish = finish;
  if (seq.callback && !seq.callback(ev) && finish == FinishReason::kNone) {
    seq.finish = FinishReason::kCancelled;
    TokenEvent last;
    last.request_id = seq.id;
    last.finish = FinishReason::kCancelled;
    seq.callback(last);
  }
}

void EngineImpl::retire_finished() {
  for (auto& s : running_) {
    if (s->finish == FinishReason::kNone) continue;
    blocks_->release(s->blocks);
    finished_stats_[s->id] = stats_of(*s);
    // Bounded history: a server runs forever; ids grow, so the first entry is the oldest.
    if (finished_stats_.size() > kFinishedStatsKept) finished_stats_.erase(finished_stats_.begin());
  }
  std::erase_if(running_, [](const auto& s) { return s->finish != FinishReason::kNone; });
}

RequestStats EngineImpl::stats_of(const Sequence& s) const {
  RequestStats st;
  st.prompt_tokens = static_cast<int64_t>(s.request.prompt.size());
  st.generated_tokens = s.generated() + (s.finish == FinishReason::kEos ? 1 : 0);
  if (st.generated_tokens > 0) {
    st.prefill_seconds = seconds_between(s.submitted, s.first_token);
    st.decode_seconds = seconds_between(s.first_token, s.last_token);
  }
  return st;
}

EngineLoad EngineImpl::load() const {
  EngineLoad l;
  l.running = static_cast<int64_t>(running_.size());
  l.waiting = static_cast<int64_t>(waiting_.size());
  l.max_batch_size = options_.max_batch_size;
  l.max_waiting = options_.max_waiting;
  l.kv_blocks_used = blocks_->used_blocks();
  l.kv_blocks_total = blocks_->num_blocks();
  l.kv_block_size = blocks_->block_size();
  l.softmax_fallbacks = static_cast<int64_t>(backend_->softmax_fallback_rows());
  l.steps_queued_ahead = steps_queued_ahead_;
  return l;
}

RequestStats EngineImpl::stats(uint64_t request_id) const {
  if (auto it = finished_stats_.find(request_id); it != finished_stats_.end()) return it->second;
  for (const auto& s : running_) if (s->id == request_id) return stats_of(*s);
  return {};
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kEos: return "stop";
    case FinishReason::kStopString: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "none";
}

std::unique_ptr<Engine> Engine::create(const EngineOptions& options) {
  return std::make_unique<EngineImpl>(options);
}

GenerationResult Engine::generate(GenerationRequest request, const TokenCallback& on_token) {
  GenerationResult result;
  const uint64_t id = submit(std::move(request), [&](const TokenEvent& ev) {
    if (ev.token >= 0 && ev.finish != FinishReason::kEos) result.tokens.push_back(ev.token);
    result.text += ev.text;
    if (ev.finish != FinishReason::kNone) result.finish = ev.finish;
    return on_token ? on_token(ev) : true;
  });
  while (result.finish == FinishReason::kNone && step()) {
  }
  // A step queued ahead for this request's next token may still be on the device: land it (its
  // token is dropped) when nothing else runs, so that what the caller reads next is final.
  for (EngineLoad l = load(); !idle() && l.running == 0 && l.waiting == 0; l = load()) step();
  result.stats = stats(id);
  return result;
}

}  // namespace fdpp
