// The Node-API boundary: NativeIndex and NativeCodec object wraps plus a few free functions.
//
// - Context-aware (Napi::Addon): per-environment instance data, so the addon loads in worker_threads.
// - Async methods return Promises and follow the baton pattern: arguments are copied into C++ values on the
//   main thread, Execute() runs the core on a libuv worker without touching any JS value, and the result is
//   turned into JS values back on the main thread. Each method has a Sync twin that runs on the caller's thread.
// - A readers–writer lock per index: searches share it, train/add take it exclusively.
// - close() drops this wrapper's reference to the index: operations already running keep the index alive
//   until they finish; later calls fail with ERR_QUIVER_CLOSED.
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "convert.h"
#include "error.h"
#include "index.h"
#include "quantizer.h"
#include "simd.h"
#include "spec.h"
#include "thread_pool.h"

namespace qvnode {

namespace {

constexpr size_t kMaxDim = 1 << 16;
constexpr size_t kMaxK = size_t(1) << 24;
constexpr int kMaxThreads = 1024;

// ------------------------------------------------------------------------------------------ async plumbing

// Runs `work` on a libuv worker thread; resolves with finish(env) or rejects with the captured error.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> finish)
      : Napi::AsyncWorker(env, "quiver"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        finish_(std::move(finish)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (...) {
      failed_ = true;
      error_ = capture_current_exception();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(make_js_error(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(finish_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(make_js_error(env, capture_current_exception()).Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> finish_;
  bool failed_ = false;
  ErrorInfo error_;
};

Napi::Object progress_to_js(Napi::Env env, const quiver::Progress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", p.phase);
  o.Set("stage", p.stage);
  o.Set("stages", p.stages);
  o.Set("iteration", p.iteration);
  o.Set("iterations", p.iterations);
  o.Set("error", p.error);
  return o;
}

// Training options as read on the main thread (everything but the callback is plain data).
struct TrainOptions {
  uint64_t seed = 1234;
  int threads = 0;
  int iterations = 25;
  size_t max_points_per_centroid = 256;
};

TrainOptions read_train_options(const Napi::Value& value) {
  TrainOptions out;
  if (!value.IsObject()) return out;
  const Napi::Object o = value.As<Napi::Object>();
  if (o.Has("seed") && !o.Get("seed").IsUndefined())
    out.seed = read_size(o.Get("seed"), "options.seed", size_t(9007199254740991ULL));
  if (o.Has("threads") && !o.Get("threads").IsUndefined())
    out.threads = read_int(o.Get("threads"), "options.threads", 0, kMaxThreads);
  if (o.Has("iterations") && !o.Get("iterations").IsUndefined())
    out.iterations = read_int(o.Get("iterations"), "options.iterations", 1, 1000);
  if (o.Has("maxPointsPerCentroid") && !o.Get("maxPointsPerCentroid").IsUndefined())
    out.max_points_per_centroid = read_size(o.Get("maxPointsPerCentroid"), "options.maxPointsPerCentroid", 1 << 20);
  return out;
}

quiver::TrainContext make_context(const TrainOptions& options) {
  quiver::TrainContext ctx;
  ctx.seed = options.seed;
  ctx.threads = options.threads;
  ctx.iterations = options.iterations;
  ctx.max_points_per_centroid = options.max_points_per_centroid;
  return ctx;
}

// Async training with progress events delivered to a JS callback on the main thread. If the callback throws,
// training stops at its next report and the promise rejects with what the callback threw.
class TrainWorker : public Napi::AsyncProgressQueueWorker<quiver::Progress> {
 public:
  TrainWorker(Napi::Env env, std::function<void(const quiver::TrainContext&)> train, TrainOptions options,
              Napi::Value callback, std::function<Napi::Value(Napi::Env)> finish)
      : Napi::AsyncProgressQueueWorker<quiver::Progress>(env, "quiver.train"),
        deferred_(Napi::Promise::Deferred::New(env)),
        train_(std::move(train)),
        options_(options),
        finish_(std::move(finish)) {
    if (callback.IsFunction()) callback_ = Napi::Persistent(callback.As<Napi::Function>());
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      quiver::TrainContext ctx = make_context(options_);
      if (!callback_.IsEmpty()) {
        ctx.progress = [this, &progress](const quiver::Progress& p) {
          QV_CHECK(!aborted_.load(), State, "training aborted: the onProgress callback threw");
          progress.Send(&p, 1);
        };
      }
      train_(ctx);
    } catch (...) {
      failed_ = true;
      error_ = capture_current_exception();
    }
  }

  void OnProgress(const quiver::Progress* data, size_t count) override {
    if (callback_.IsEmpty() || aborted_.load()) return;
    Napi::Env env = Env();
    for (size_t i = 0; i < count; ++i) {
      try {
        callback_.Call({progress_to_js(env, data[i])});
      } catch (const Napi::Error& e) {
        callback_error_ = Napi::Reference<Napi::Value>::New(e.Value(), 1);
        aborted_ = true;
        return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!callback_error_.IsEmpty()) {
      deferred_.Reject(callback_error_.Value());
    } else if (failed_) {
      deferred_.Reject(make_js_error(env, error_).Value());
    } else {
      try {
        deferred_.Resolve(finish_(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void(const quiver::TrainContext&)> train_;
  TrainOptions options_;
  std::function<Napi::Value(Napi::Env)> finish_;
  Napi::FunctionReference callback_;
  Napi::Reference<Napi::Value> callback_error_;
  std::atomic<bool> aborted_{false};
  bool failed_ = false;
  ErrorInfo error_;
};

// Sync training: progress goes straight to the callback on this thread; a throwing callback aborts training
// and its exception propagates unchanged.
quiver::TrainContext sync_context(Napi::Env env, const TrainOptions& options, const Napi::Value& callback) {
  quiver::TrainContext ctx = make_context(options);
  if (callback.IsFunction()) {
    Napi::Function fn = callback.As<Napi::Function>();
    ctx.progress = [env, fn](const quiver::Progress& p) { fn.Call({progress_to_js(env, p)}); };
  }
  return ctx;
}

// ------------------------------------------------------------------------------------------------ index

struct IndexState {
  std::unique_ptr<quiver::Index> index;
  std::shared_mutex mutex;
  // Mirrors of mutable facts, readable from the main thread without waiting for a running add.
  std::atomic<size_t> size{0};
  std::atomic<bool> trained{false};
};

struct SearchResult {
  std::vector<int64_t> ids;
  std::vector<float> distances;
};

Napi::Value search_result_to_js(Napi::Env env, const SearchResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ids", to_bigint64_array(env, r.ids));
  o.Set("distances", to_float32_array(env, r.distances));
  return o;
}

class IndexWrap : public Napi::ObjectWrap<IndexWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeIndex",
                       {
                           InstanceMethod<&IndexWrap::Train>("train"),
                           InstanceMethod<&IndexWrap::TrainSync>("trainSync"),
                           InstanceMethod<&IndexWrap::Add>("add"),
                           InstanceMethod<&IndexWrap::AddSync>("addSync"),
                           InstanceMethod<&IndexWrap::Search>("search"),
                           InstanceMethod<&IndexWrap::SearchSync>("searchSync"),
                           InstanceMethod<&IndexWrap::Close>("close"),
                           InstanceAccessor<&IndexWrap::Dim>("dim"),
                           InstanceAccessor<&IndexWrap::Size>("size"),
                           InstanceAccessor<&IndexWrap::Spec>("spec"),
                           InstanceAccessor<&IndexWrap::MetricName>("metric"),
                           InstanceAccessor<&IndexWrap::CodeSize>("codeSize"),
                           InstanceAccessor<&IndexWrap::IsTrained>("isTrained"),
                           InstanceAccessor<&IndexWrap::IsClosed>("closed"),
                       });
  }

  // new NativeIndex(spec: string, dim: number, metric: 'l2'|'ip'|'cosine')
  IndexWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IndexWrap>(info) {
    guard(info.Env(), [&] {
      const std::string spec = read_string(info[0], "spec");
      dim_ = read_size(info[1], "dim", kMaxDim);
      QV_CHECK(dim_ >= 1, InvalidArgument, "dim: expected an integer from 1 to " << kMaxDim << ", got 0");
      const quiver::Metric metric = quiver::parse_metric(read_string(info[2], "metric"));
      state_ = std::make_shared<IndexState>();
      state_->index = quiver::make_index(spec, dim_, metric);
      state_->trained = state_->index->is_trained();
      spec_ = state_->index->spec();
      metric_ = metric;
      code_size_ = state_->index->code_size();
      return 0;
    });
  }

 private:
  std::shared_ptr<IndexState> live(Napi::Env env) const {
    if (!state_) {
      Napi::Error e = Napi::Error::New(env, "the index is closed");
      e.Set("code", Napi::String::New(env, "ERR_QUIVER_CLOSED"));
      throw e;
    }
    return state_;
  }

  // train(data: Float32Array, options?, onProgress?) → Promise<void>
  Napi::Value Train(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      size_t n = 0;
      auto data = std::make_shared<std::vector<float>>(read_vectors(info[0], "vectors", dim_, &n));
      const TrainOptions options = read_train_options(info[1]);
      auto train = [state, data, n](const quiver::TrainContext& ctx) {
        check_finite(data->data(), data->size(), state->index->dim(), "vectors");
        std::unique_lock<std::shared_mutex> lock(state->mutex);
        state->index->train(n, data->data(), ctx);
        state->trained = state->index->is_trained();
      };
      auto* worker = new TrainWorker(info.Env(), train, options, info[2],
                                     [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value TrainSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      size_t n = 0;
      const std::vector<float> data = read_vectors(info[0], "vectors", dim_, &n);
      check_finite(data.data(), data.size(), dim_, "vectors");
      const quiver::TrainContext ctx = sync_context(info.Env(), read_train_options(info[1]), info[2]);
      std::unique_lock<std::shared_mutex> lock(state->mutex);
      state->index->train(n, data.data(), ctx);
      state->trained = state->index->is_trained();
      return info.Env().Undefined();
    });
  }

  struct AddArgs {
    std::vector<float> data;
    std::vector<int64_t> ids;
    bool has_ids = false;
    size_t n = 0;
    int threads = 0;
  };

  AddArgs read_add_args(const Napi::CallbackInfo& info) {
    AddArgs a;
    a.data = read_vectors(info[0], "vectors", dim_, &a.n);
    if (!info[1].IsUndefined() && !info[1].IsNull()) {
      a.ids = read_ids(info[1], "ids", a.n);
      a.has_ids = true;
    }
    if (!info[2].IsUndefined()) a.threads = read_int(info[2], "options.threads", 0, kMaxThreads);
    return a;
  }

  static void run_add(IndexState& state, const AddArgs& a) {
    check_finite(a.data.data(), a.data.size(), state.index->dim(), "vectors");
    std::unique_lock<std::shared_mutex> lock(state.mutex);
    state.index->add(a.n, a.data.data(), a.has_ids ? a.ids.data() : nullptr, a.threads);
    state.size = state.index->size();
  }

  // add(vectors: Float32Array, ids?: BigInt64Array | null, threads?: number) → Promise<void>
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      auto args = std::make_shared<AddArgs>(read_add_args(info));
      auto* worker = new PromiseWorker(
          info.Env(), [state, args] { run_add(*state, *args); }, [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value AddSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      run_add(*state, read_add_args(info));
      return info.Env().Undefined();
    });
  }

  struct SearchArgs {
    std::vector<float> queries;
    size_t nq = 0, k = 0;
    quiver::SearchParams params;
  };

  // (queries, k, nprobe, refine, threads)
  SearchArgs read_search_args(const Napi::CallbackInfo& info) {
    SearchArgs a;
    a.queries = read_vectors(info[0], "queries", dim_, &a.nq);
    a.k = read_size(info[1], "k", kMaxK);
    QV_CHECK(a.k >= 1, InvalidArgument, "k: expected an integer >= 1, got 0");
    QV_CHECK(a.nq * a.k <= (size_t(1) << 28), InvalidArgument,
             "queries × k = " << a.nq * a.k << " results exceed the limit of 2^28 per call; split the batch");
    if (!info[2].IsUndefined()) a.params.nprobe = read_size(info[2], "options.nprobe", 1 << 20);
    if (!info[3].IsUndefined()) a.params.refine = read_size(info[3], "options.refine", 1 << 16);
    if (!info[4].IsUndefined()) a.params.threads = read_int(info[4], "options.threads", 0, kMaxThreads);
    QV_CHECK(a.params.nprobe >= 1, InvalidArgument, "options.nprobe: expected an integer >= 1, got 0");
    QV_CHECK(a.params.refine >= 1, InvalidArgument, "options.refine: expected an integer >= 1, got 0");
    return a;
  }

  static SearchResult run_search(IndexState& state, const SearchArgs& a) {
    check_finite(a.queries.data(), a.queries.size(), state.index->dim(), "queries");
    SearchResult r;
    r.ids.resize(a.nq * a.k);
    r.distances.resize(a.nq * a.k);
    std::shared_lock<std::shared_mutex> lock(state.mutex);
    state.index->search(a.nq, a.queries.data(), a.k, a.params, r.ids.data(), r.distances.data());
    return r;
  }

  Napi::Value Search(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      auto args = std::make_shared<SearchArgs>(read_search_args(info));
      auto result = std::make_shared<SearchResult>();
      auto* worker = new PromiseWorker(
          info.Env(), [state, args, result] { *result = run_search(*state, *args); },
          [result](Napi::Env env) { return search_result_to_js(env, *result); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value SearchSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      return search_result_to_js(info.Env(), run_search(*state, read_search_args(info)));
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  Napi::Value Dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(dim_)); }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? double(state_->size.load()) : 0.0);
  }
  Napi::Value Spec(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), spec_); }
  Napi::Value MetricName(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), quiver::metric_name(metric_));
  }
  Napi::Value CodeSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(code_size_)); }
  Napi::Value IsTrained(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), state_ && state_->trained.load());
  }
  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

  std::shared_ptr<IndexState> state_;
  std::string spec_;
  size_t dim_ = 0;
  size_t code_size_ = 0;
  quiver::Metric metric_ = quiver::Metric::L2;
};

// ------------------------------------------------------------------------------------------------ codec

struct CodecState {
  std::unique_ptr<quiver::Quantizer> codec;
  std::shared_mutex mutex;
  std::atomic<bool> trained{false};
};

class CodecWrap : public Napi::ObjectWrap<CodecWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeCodec",
                       {
                           InstanceMethod<&CodecWrap::Train>("train"),
                           InstanceMethod<&CodecWrap::TrainSync>("trainSync"),
                           InstanceMethod<&CodecWrap::Encode>("encode"),
                           InstanceMethod<&CodecWrap::EncodeSync>("encodeSync"),
                           InstanceMethod<&CodecWrap::Decode>("decode"),
                           InstanceMethod<&CodecWrap::DecodeSync>("decodeSync"),
                           InstanceAccessor<&CodecWrap::Dim>("dim"),
                           InstanceAccessor<&CodecWrap::Spec>("spec"),
                           InstanceAccessor<&CodecWrap::CodeSize>("codeSize"),
                           InstanceAccessor<&CodecWrap::IsTrained>("isTrained"),
                       });
  }

  // new NativeCodec(spec: string, dim: number)
  CodecWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CodecWrap>(info) {
    guard(info.Env(), [&] {
      const std::string spec = read_string(info[0], "spec");
      dim_ = read_size(info[1], "dim", kMaxDim);
      QV_CHECK(dim_ >= 1, InvalidArgument, "dim: expected an integer from 1 to " << kMaxDim << ", got 0");
      state_ = std::make_shared<CodecState>();
      state_->codec = quiver::make_codec(spec, dim_);
      spec_ = state_->codec->spec();
      code_size_ = state_->codec->code_size();
      return 0;
    });
  }

 private:
  Napi::Value Train(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = state_;
      size_t n = 0;
      auto data = std::make_shared<std::vector<float>>(read_vectors(info[0], "vectors", dim_, &n));
      auto train = [state, data, n](const quiver::TrainContext& ctx) {
        check_finite(data->data(), data->size(), state->codec->dim(), "vectors");
        std::unique_lock<std::shared_mutex> lock(state->mutex);
        state->codec->train(n, data->data(), ctx);
        state->trained = true;
      };
      auto* worker = new TrainWorker(info.Env(), train, read_train_options(info[1]), info[2],
                                     [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value TrainSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      size_t n = 0;
      const std::vector<float> data = read_vectors(info[0], "vectors", dim_, &n);
      check_finite(data.data(), data.size(), dim_, "vectors");
      const quiver::TrainContext ctx = sync_context(info.Env(), read_train_options(info[1]), info[2]);
      std::unique_lock<std::shared_mutex> lock(state_->mutex);
      state_->codec->train(n, data.data(), ctx);
      state_->trained = true;
      return info.Env().Undefined();
    });
  }

  static std::vector<uint8_t> run_encode(CodecState& state, const std::vector<float>& data, size_t n, int threads) {
    check_finite(data.data(), data.size(), state.codec->dim(), "vectors");
    std::shared_lock<std::shared_mutex> lock(state.mutex);
    std::vector<uint8_t> codes(n * state.codec->code_size());
    state.codec->encode(n, data.data(), codes.data(), threads);
    return codes;
  }

  static std::vector<float> run_decode(CodecState& state, const std::vector<uint8_t>& codes, int threads) {
    std::shared_lock<std::shared_mutex> lock(state.mutex);
    const size_t cs = state.codec->code_size();
    QV_CHECK(codes.size() % cs == 0, InvalidArgument,
             "codes: expected a length that is a multiple of codeSize " << cs << ", got " << codes.size());
    const size_t n = codes.size() / cs;
    std::vector<float> out(n * state.codec->dim());
    state.codec->decode(n, codes.data(), out.data(), threads);
    return out;
  }

  // encode(vectors, threads?) → Promise<Uint8Array>
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = state_;
      size_t n = 0;
      auto data = std::make_shared<std::vector<float>>(read_vectors(info[0], "vectors", dim_, &n));
      const int threads = info[1].IsUndefined() ? 0 : read_int(info[1], "options.threads", 0, kMaxThreads);
      auto codes = std::make_shared<std::vector<uint8_t>>();
      auto* worker = new PromiseWorker(
          info.Env(), [state, data, n, threads, codes] { *codes = run_encode(*state, *data, n, threads); },
          [codes](Napi::Env env) { return to_uint8_array(env, *codes); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value EncodeSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      size_t n = 0;
      const std::vector<float> data = read_vectors(info[0], "vectors", dim_, &n);
      const int threads = info[1].IsUndefined() ? 0 : read_int(info[1], "options.threads", 0, kMaxThreads);
      return to_uint8_array(info.Env(), run_encode(*state_, data, n, threads));
    });
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = state_;
      auto codes = std::make_shared<std::vector<uint8_t>>(read_bytes(info[0], "codes"));
      const int threads = info[1].IsUndefined() ? 0 : read_int(info[1], "options.threads", 0, kMaxThreads);
      auto out = std::make_shared<std::vector<float>>();
      auto* worker = new PromiseWorker(
          info.Env(), [state, codes, threads, out] { *out = run_decode(*state, *codes, threads); },
          [out](Napi::Env env) { return to_float32_array(env, *out); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value DecodeSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const int threads = info[1].IsUndefined() ? 0 : read_int(info[1], "options.threads", 0, kMaxThreads);
      return to_float32_array(info.Env(), run_decode(*state_, read_bytes(info[0], "codes"), threads));
    });
  }

  Napi::Value Dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(dim_)); }
  Napi::Value Spec(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), spec_); }
  Napi::Value CodeSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(code_size_)); }
  Napi::Value IsTrained(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), state_->trained.load());
  }

  std::shared_ptr<CodecState> state_;
  std::string spec_;
  size_t dim_ = 0;
  size_t code_size_ = 0;
};

// ------------------------------------------------------------------------------------------------ addon

class QuiverAddon : public Napi::Addon<QuiverAddon> {
 public:
  QuiverAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("NativeIndex", IndexWrap::Init(env), napi_enumerable),
                             InstanceValue("NativeCodec", CodecWrap::Init(env), napi_enumerable),
                             InstanceMethod<&QuiverAddon::DescribeSpec>("describeSpec", napi_enumerable),
                             InstanceMethod<&QuiverAddon::DescribeCodecSpec>("describeCodecSpec", napi_enumerable),
                             InstanceMethod<&QuiverAddon::GetSimd>("getSimdLevel", napi_enumerable),
                             InstanceMethod<&QuiverAddon::SetSimd>("setSimdLevel", napi_enumerable),
                             InstanceMethod<&QuiverAddon::SupportedSimd>("supportedSimdLevels", napi_enumerable),
                             InstanceMethod<&QuiverAddon::HardwareThreads>("hardwareThreads", napi_enumerable),
                         });
  }

 private:
  // describeSpec(spec, dim) → { spec, codeSize }; throws RangeError for an invalid spec.
  Napi::Value DescribeSpec(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string spec = read_string(info[0], "spec");
      const size_t dim = read_size(info[1], "dim", kMaxDim);
      QV_CHECK(dim >= 1, InvalidArgument, "dim: expected an integer from 1 to " << kMaxDim << ", got 0");
      const quiver::SpecInfo d = quiver::describe_index_spec(spec, dim);
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("spec", d.canonical);
      o.Set("codeSize", double(d.code_size));
      return o;
    });
  }

  Napi::Value DescribeCodecSpec(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string spec = read_string(info[0], "spec");
      const size_t dim = read_size(info[1], "dim", kMaxDim);
      QV_CHECK(dim >= 1, InvalidArgument, "dim: expected an integer from 1 to " << kMaxDim << ", got 0");
      const auto codec = quiver::make_codec(spec, dim);
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("spec", codec->spec());
      o.Set("codeSize", double(codec->code_size()));
      return o;
    });
  }

  Napi::Value GetSimd(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), quiver::simd_level_name(quiver::simd_level()));
  }

  Napi::Value SetSimd(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string name = read_string(info[0], "level");
      quiver::SimdLevel level;
      QV_CHECK(quiver::parse_simd_level(name.c_str(), &level), InvalidArgument,
               "level: expected 'scalar', 'avx2' or 'avx512', got '" << name << "'");
      quiver::set_simd_level(level);
      return info.Env().Undefined();
    });
  }

  Napi::Value SupportedSimd(const Napi::CallbackInfo& info) {
    const auto levels = quiver::supported_simd_levels();
    Napi::Array out = Napi::Array::New(info.Env(), levels.size());
    for (size_t i = 0; i < levels.size(); ++i) out.Set(uint32_t(i), quiver::simd_level_name(levels[i]));
    return out;
  }

  Napi::Value HardwareThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(quiver::effective_threads(0)));
  }
};

}  // namespace

}  // namespace qvnode

using qvnode::QuiverAddon;
NODE_API_ADDON(QuiverAddon)
