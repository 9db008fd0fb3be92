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
#include "gpu.h"
#include "faiss_io.h"
#include "index.h"
#include "io.h"
#include "quantizer.h"
#include "shards.h"
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
  quiver::Device device = quiver::Device::Cpu;
};

// 'cpu' (default) or 'cuda'; the TypeScript layer has already turned 'cuda' into 'cpu' when no GPU is usable.
quiver::Device read_device(const Napi::Value& value, const char* name) {
  if (value.IsUndefined() || value.IsNull()) return quiver::Device::Cpu;
  QV_CHECK(value.IsString(), InvalidArgument, name << ": expected 'cpu' or 'cuda'");
  const std::string s = value.As<Napi::String>().Utf8Value();
  if (s == "cpu") return quiver::Device::Cpu;
  if (s == "cuda") return quiver::Device::Cuda;
  QV_THROW(InvalidArgument, name << ": expected 'cpu' or 'cuda', got '" << s << "'");
}

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
  if (o.Has("device")) out.device = read_device(o.Get("device"), "options.device");
  return out;
}

quiver::TrainContext make_context(const TrainOptions& options) {
  quiver::TrainContext ctx;
  ctx.seed = options.seed;
  ctx.threads = options.threads;
  ctx.iterations = options.iterations;
  ctx.max_points_per_centroid = options.max_points_per_centroid;
  ctx.device = options.device;
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
      const quiver::DeviceScope device_scope(ctx.device);  // encoding passes inside training
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
                           InstanceMethod<&IndexWrap::Remove>("remove"),
                           InstanceMethod<&IndexWrap::RemoveSync>("removeSync"),
                           InstanceMethod<&IndexWrap::Has>("has"),
                           InstanceMethod<&IndexWrap::Reconstruct>("reconstruct"),
                           InstanceMethod<&IndexWrap::Save>("save"),
                           InstanceMethod<&IndexWrap::SaveSync>("saveSync"),
                           InstanceMethod<&IndexWrap::ToBuffer>("toBuffer"),
                           InstanceMethod<&IndexWrap::SaveFaiss>("saveFaiss"),
                           InstanceMethod<&IndexWrap::SaveFaissSync>("saveFaissSync"),
                           InstanceMethod<&IndexWrap::ToFaissBuffer>("toFaissBuffer"),
                           InstanceMethod<&IndexWrap::ExportPlain>("exportPlain"),
                           InstanceMethod<&IndexWrap::Close>("close"),
                           InstanceAccessor<&IndexWrap::Dim>("dim"),
                           InstanceAccessor<&IndexWrap::Size>("size"),
                           InstanceAccessor<&IndexWrap::Spec>("spec"),
                           InstanceAccessor<&IndexWrap::MetricName>("metric"),
                           InstanceAccessor<&IndexWrap::CodeSize>("codeSize"),
                           InstanceAccessor<&IndexWrap::RefineBytes>("refineBytes"),
                           InstanceAccessor<&IndexWrap::IsTrained>("isTrained"),
                           InstanceAccessor<&IndexWrap::IsClosed>("closed"),
                       });
  }

  // new NativeIndex(spec: string, dim: number, metric: 'l2'|'ip'|'cosine'), or (from C++ only) an External
  // holding a loaded index.
  IndexWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IndexWrap>(info) {
    guard(info.Env(), [&] {
      if (info[0].IsExternal()) {
        adopt(*info[0].As<Napi::External<std::shared_ptr<IndexState>>>().Data());
        return 0;
      }
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
      refine_bytes_ = state_->index->refine_bytes();
      return 0;
    });
  }

  // Wraps a loaded index in a new JS NativeIndex object.
  static Napi::Value wrap(Napi::Env env, std::shared_ptr<IndexState> state);

 private:
  void adopt(std::shared_ptr<IndexState> state) {
    state_ = std::move(state);
    const quiver::Index& index = *state_->index;
    state_->trained = index.is_trained();
    state_->size = index.size();
    dim_ = index.dim();
    spec_ = index.spec();
    metric_ = index.metric();
    code_size_ = index.code_size();
    refine_bytes_ = index.refine_bytes();
  }

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
      const quiver::DeviceScope device_scope(ctx.device);
      std::unique_lock<std::shared_mutex> lock(state->mutex);
      state->index->train(n, data.data(), ctx);
      state->trained = state->index->is_trained();
      return info.Env().Undefined();
    });
  }

  struct AddArgs {
    std::vector<float> data;
    std::vector<int64_t> ids;
    std::vector<int32_t> categories;
    bool has_ids = false, has_categories = false, upsert = false;
    size_t n = 0;
    int threads = 0;
    quiver::Device device = quiver::Device::Cpu;
  };

  // (vectors, ids | null, threads?, categories?: Int32Array | null, upsert?: boolean)
  AddArgs read_add_args(const Napi::CallbackInfo& info) {
    AddArgs a;
    a.data = read_vectors(info[0], "vectors", dim_, &a.n);
    if (!info[1].IsUndefined() && !info[1].IsNull()) {
      a.ids = read_ids(info[1], "ids", a.n);
      a.has_ids = true;
    }
    if (!info[2].IsUndefined()) a.threads = read_int(info[2], "options.threads", 0, kMaxThreads);
    if (!info[3].IsUndefined() && !info[3].IsNull()) {
      a.categories = read_int32s(info[3], "options.categories");
      QV_CHECK(a.categories.size() == a.n, InvalidArgument,
               "options.categories: expected " << a.n << " categories (one per vector), got " << a.categories.size());
      a.has_categories = true;
    }
    a.upsert = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
    QV_CHECK(!a.upsert || a.has_ids, InvalidArgument, "options.upsert: needs ids to know what to replace");
    a.device = read_device(info[5], "options.device");
    return a;
  }

  static void run_add(IndexState& state, const AddArgs& a) {
    check_finite(a.data.data(), a.data.size(), state.index->dim(), "vectors");
    std::unique_lock<std::shared_mutex> lock(state.mutex);
    const quiver::DeviceScope device_scope(a.device);
    state.index->add(a.n, a.data.data(), a.has_ids ? a.ids.data() : nullptr,
                     a.has_categories ? a.categories.data() : nullptr, a.upsert, a.threads);
    state.size = state.index->size();
  }

  // add(vectors: Float32Array, ids?: BigInt64Array | null, threads?, categories?, upsert?) → Promise<void>
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
    quiver::SearchParams params;  // its filter pointers point into allow / categories below
    std::vector<int64_t> allow;
    std::vector<int32_t> categories;
    bool has_allow = false, has_categories = false, per_category = false;
  };

  // (queries, k, nprobe, refine, threads, allow?: BigInt64Array | null, categories?: Int32Array | null,
  //  perCategory?: boolean)
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
    if (!info[5].IsUndefined() && !info[5].IsNull()) {
      if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
        QV_THROW(InvalidArgument, "options.filter: expected a BigInt64Array of allowed ids");
      const Napi::BigInt64Array allow = info[5].As<Napi::BigInt64Array>();
      a.allow.assign(allow.Data(), allow.Data() + allow.ElementLength());
      a.has_allow = true;
    }
    if (!info[6].IsUndefined() && !info[6].IsNull()) {
      a.categories = read_int32s(info[6], "options.categories");
      a.has_categories = true;
    }
    a.per_category = info[7].IsBoolean() && info[7].As<Napi::Boolean>().Value();
    a.params.device = read_device(info[8], "options.device");
    QV_CHECK(!a.per_category || !a.categories.empty(), InvalidArgument,
             "options.perCategory: needs a non-empty options.categories");
    const size_t groups = a.per_category ? a.categories.size() : 1;
    QV_CHECK(a.nq * a.k <= (size_t(1) << 28) / groups, InvalidArgument,
             "queries × categories × k exceeds the limit of 2^28 results per call; split the batch");
    return a;
  }

  static SearchResult run_search(IndexState& state, const SearchArgs& a) {
    check_finite(a.queries.data(), a.queries.size(), state.index->dim(), "queries");
    quiver::SearchParams params = a.params;
    // A given but empty list filters everything out, so it needs a non-null pointer even with no elements.
    static const int64_t kNoIds = 0;
    static const int32_t kNoCategories = 0;
    if (a.has_allow) {
      params.allow_ids = a.allow.empty() ? &kNoIds : a.allow.data();
      params.allow_count = a.allow.size();
    }
    if (a.has_categories) {
      params.categories = a.categories.empty() ? &kNoCategories : a.categories.data();
      params.category_count = a.categories.size();
    }
    SearchResult r;
    const size_t groups = a.per_category ? a.categories.size() : 1;
    r.ids.resize(a.nq * groups * a.k);
    r.distances.resize(a.nq * groups * a.k);
    std::shared_lock<std::shared_mutex> lock(state.mutex);
    if (a.per_category)
      state.index->search_per_category(a.nq, a.queries.data(), a.k, params, r.ids.data(), r.distances.data());
    else
      state.index->search(a.nq, a.queries.data(), a.k, params, r.ids.data(), r.distances.data());
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

  static size_t run_remove(IndexState& state, const std::vector<int64_t>& ids) {
    std::unique_lock<std::shared_mutex> lock(state.mutex);
    const size_t removed = state.index->remove(ids.size(), ids.data());
    state.size = state.index->size();
    return removed;
  }

  static std::vector<int64_t> read_id_list(const Napi::Value& value) {
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
      QV_THROW(InvalidArgument, "ids: expected a BigInt64Array");
    const Napi::BigInt64Array a = value.As<Napi::BigInt64Array>();
    return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
  }

  // remove(ids: BigInt64Array) → Promise<number of removed vectors>
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      auto ids = std::make_shared<std::vector<int64_t>>(read_id_list(info[0]));
      auto removed = std::make_shared<size_t>(0);
      auto* worker = new PromiseWorker(
          info.Env(), [state, ids, removed] { *removed = run_remove(*state, *ids); },
          [removed](Napi::Env env) { return Napi::Number::New(env, double(*removed)); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value RemoveSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      return Napi::Number::New(info.Env(), double(run_remove(*state, read_id_list(info[0]))));
    });
  }

  Napi::Value Has(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      const int64_t id = read_bigint(info[0], "id");
      std::shared_lock<std::shared_mutex> lock(state->mutex);
      return Napi::Boolean::New(info.Env(), state->index->has(id));
    });
  }

  // reconstruct(id: bigint) → Float32Array (dim) or undefined when the id is absent.
  Napi::Value Reconstruct(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      const int64_t id = read_bigint(info[0], "id");
      std::vector<float> out(dim_);
      std::shared_lock<std::shared_mutex> lock(state->mutex);
      if (!state->index->reconstruct(id, out.data())) return info.Env().Undefined();
      return to_float32_array(info.Env(), out);
    });
  }

  static void run_save(IndexState& state, const std::string& path) {
    std::vector<uint8_t> bytes;
    {
      std::shared_lock<std::shared_mutex> lock(state.mutex);
      bytes = state.index->serialize();
    }
    quiver::write_file_atomic(path, bytes);
  }

  // save(path) → Promise<void>: serialises under the read lock, then writes atomically without it.
  Napi::Value Save(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      const std::string path = read_string(info[0], "path");
      auto* worker = new PromiseWorker(
          info.Env(), [state, path] { run_save(*state, path); }, [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value SaveSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      run_save(*state, read_string(info[0], "path"));
      return info.Env().Undefined();
    });
  }

  Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      std::shared_lock<std::shared_mutex> lock(state->mutex);
      const std::vector<uint8_t> bytes = state->index->serialize();
      return Napi::Buffer<uint8_t>::Copy(info.Env(), bytes.data(), bytes.size());
    });
  }

  static void run_save_faiss(IndexState& state, const std::string& path) {
    std::vector<uint8_t> bytes;
    {
      std::shared_lock<std::shared_mutex> lock(state.mutex);
      bytes = quiver::index_to_faiss(*state.index);
    }
    quiver::write_file_atomic(path, bytes);
  }

  // saveFaiss(path) → Promise<void>: the index as a faiss index file (faiss_io.h), written atomically.
  Napi::Value SaveFaiss(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      const std::string path = read_string(info[0], "path");
      auto* worker = new PromiseWorker(
          info.Env(), [state, path] { run_save_faiss(*state, path); },
          [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value SaveFaissSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      run_save_faiss(*state, read_string(info[0], "path"));
      return info.Env().Undefined();
    });
  }

  Napi::Value ToFaissBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      std::shared_lock<std::shared_mutex> lock(state->mutex);
      const std::vector<uint8_t> bytes = quiver::index_to_faiss(*state->index);
      return Napi::Buffer<uint8_t>::Copy(info.Env(), bytes.data(), bytes.size());
    });
  }

  // exportPlain() → { codec, residual, norm, normLo, normHi, arrays: [{ name, shape, data, description }] }
  Napi::Value ExportPlain(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = live(info.Env());
      quiver::PlainExport e;
      {
        std::shared_lock<std::shared_mutex> lock(state->mutex);
        e = quiver::export_plain(*state->index);
      }
      Napi::Env env = info.Env();
      Napi::Object o = Napi::Object::New(env);
      o.Set("codec", e.codec);
      o.Set("residual", e.residual);
      if (!e.norm.empty()) {
        o.Set("norm", e.norm);
        o.Set("normLo", double(e.norm_lo));
        o.Set("normHi", double(e.norm_hi));
      }
      Napi::Array arrays = Napi::Array::New(env, e.arrays.size());
      for (size_t i = 0; i < e.arrays.size(); ++i) {
        const quiver::PlainArray& a = e.arrays[i];
        Napi::Object entry = Napi::Object::New(env);
        entry.Set("name", a.name);
        Napi::Array shape = Napi::Array::New(env, a.shape.size());
        for (size_t j = 0; j < a.shape.size(); ++j) shape.Set(uint32_t(j), double(a.shape[j]));
        entry.Set("shape", shape);
        entry.Set("data", to_float32_array(env, a.data));
        entry.Set("description", a.description);
        arrays.Set(uint32_t(i), entry);
      }
      o.Set("arrays", arrays);
      return o;
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
  Napi::Value RefineBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(refine_bytes_));
  }
  Napi::Value IsTrained(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), state_ && state_->trained.load());
  }
  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

  std::shared_ptr<IndexState> state_;
  std::string spec_;
  size_t dim_ = 0;
  size_t code_size_ = 0;
  size_t refine_bytes_ = 0;
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
                           InstanceMethod<&CodecWrap::Save>("save"),
                           InstanceMethod<&CodecWrap::SaveSync>("saveSync"),
                           InstanceMethod<&CodecWrap::ToBuffer>("toBuffer"),
                           InstanceAccessor<&CodecWrap::Dim>("dim"),
                           InstanceAccessor<&CodecWrap::Spec>("spec"),
                           InstanceAccessor<&CodecWrap::CodeSize>("codeSize"),
                           InstanceAccessor<&CodecWrap::IsTrained>("isTrained"),
                       });
  }

  // new NativeCodec(spec: string, dim: number), or (from C++ only) an External holding a loaded codec.
  CodecWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CodecWrap>(info) {
    guard(info.Env(), [&] {
      if (info[0].IsExternal()) {
        state_ = *info[0].As<Napi::External<std::shared_ptr<CodecState>>>().Data();
        state_->trained = state_->codec->is_trained();
        dim_ = state_->codec->dim();
        spec_ = state_->codec->spec();
        code_size_ = state_->codec->code_size();
        return 0;
      }
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
      const quiver::DeviceScope device_scope(ctx.device);
      std::unique_lock<std::shared_mutex> lock(state_->mutex);
      state_->codec->train(n, data.data(), ctx);
      state_->trained = true;
      return info.Env().Undefined();
    });
  }

  static std::vector<uint8_t> run_encode(CodecState& state, const std::vector<float>& data, size_t n, int threads,
                                         quiver::Device device = quiver::Device::Cpu) {
    const quiver::DeviceScope device_scope(device);
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

  // encode(vectors, threads?, device?) → Promise<Uint8Array>
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = state_;
      size_t n = 0;
      auto data = std::make_shared<std::vector<float>>(read_vectors(info[0], "vectors", dim_, &n));
      const int threads = info[1].IsUndefined() ? 0 : read_int(info[1], "options.threads", 0, kMaxThreads);
      const quiver::Device device = read_device(info[2], "options.device");
      auto codes = std::make_shared<std::vector<uint8_t>>();
      auto* worker = new PromiseWorker(
          info.Env(), [state, data, n, threads, device, codes] { *codes = run_encode(*state, *data, n, threads, device); },
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
      return to_uint8_array(info.Env(), run_encode(*state_, data, n, threads, read_device(info[2], "options.device")));
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

  static std::vector<uint8_t> serialize(CodecState& state) {
    std::shared_lock<std::shared_mutex> lock(state.mutex);
    return quiver::serialize_codec(*state.codec);
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = state_;
      const std::string path = read_string(info[0], "path");
      auto* worker = new PromiseWorker(
          info.Env(), [state, path] { quiver::write_file_atomic(path, serialize(*state)); },
          [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value SaveSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      quiver::write_file_atomic(read_string(info[0], "path"), serialize(*state_));
      return info.Env().Undefined();
    });
  }

  Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::vector<uint8_t> bytes = serialize(*state_);
      return Napi::Buffer<uint8_t>::Copy(info.Env(), bytes.data(), bytes.size());
    });
  }

 public:
  static Napi::Value wrap(Napi::Env env, std::shared_ptr<CodecState> state);

 private:
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
  Napi::FunctionReference index_constructor, codec_constructor;

  QuiverAddon(Napi::Env env, Napi::Object exports) {
    Napi::Function index_class = IndexWrap::Init(env), codec_class = CodecWrap::Init(env);
    index_constructor = Napi::Persistent(index_class);
    codec_constructor = Napi::Persistent(codec_class);
    DefineAddon(exports, {
                             InstanceValue("NativeIndex", index_class, napi_enumerable),
                             InstanceValue("NativeCodec", codec_class, napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadIndex>("loadIndex", napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadIndexSync>("loadIndexSync", napi_enumerable),
                             InstanceMethod<&QuiverAddon::IndexFromBuffer>("indexFromBuffer", napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadFaiss>("loadFaissIndex", napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadFaissSync>("loadFaissIndexSync", napi_enumerable),
                             InstanceMethod<&QuiverAddon::FaissFromBuffer>("faissIndexFromBuffer", napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadCodec>("loadCodec", napi_enumerable),
                             InstanceMethod<&QuiverAddon::LoadCodecSync>("loadCodecSync", napi_enumerable),
                             InstanceMethod<&QuiverAddon::CodecFromBuffer>("codecFromBuffer", napi_enumerable),
                             InstanceMethod<&QuiverAddon::DescribeSpec>("describeSpec", napi_enumerable),
                             InstanceMethod<&QuiverAddon::DescribeCodecSpec>("describeCodecSpec", napi_enumerable),
                             InstanceMethod<&QuiverAddon::GetSimd>("getSimdLevel", napi_enumerable),
                             InstanceMethod<&QuiverAddon::SetSimd>("setSimdLevel", napi_enumerable),
                             InstanceMethod<&QuiverAddon::SupportedSimd>("supportedSimdLevels", napi_enumerable),
                             InstanceMethod<&QuiverAddon::HardwareThreads>("hardwareThreads", napi_enumerable),
                             InstanceMethod<&QuiverAddon::GpuInfo>("gpuInfo", napi_enumerable),
                             InstanceMethod<&QuiverAddon::MergeIndexFiles>("mergeIndexFiles", napi_enumerable),
                         });
  }

 private:
  static std::shared_ptr<IndexState> load_index(const std::string& path, bool mmap) {
    auto state = std::make_shared<IndexState>();
    state->index = quiver::Index::deserialize(mmap ? quiver::map_file(path) : quiver::read_file(path), mmap);
    return state;
  }

  static std::shared_ptr<CodecState> load_codec(const std::shared_ptr<quiver::ByteSource>& bytes) {
    auto state = std::make_shared<CodecState>();
    state->codec = quiver::deserialize_codec(bytes->data(), bytes->size());
    return state;
  }

  // loadIndex(path, mmap) → Promise<NativeIndex>; with mmap the codes stay in the mapped file.
  Napi::Value LoadIndex(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = read_string(info[0], "path");
      const bool mmap = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
      auto state = std::make_shared<std::shared_ptr<IndexState>>();
      auto* worker = new PromiseWorker(
          info.Env(), [path, mmap, state] { *state = load_index(path, mmap); },
          [state](Napi::Env env) { return IndexWrap::wrap(env, *state); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value LoadIndexSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = read_string(info[0], "path");
      const bool mmap = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
      return IndexWrap::wrap(info.Env(), load_index(path, mmap));
    });
  }

  // indexFromBuffer(bytes: Uint8Array) → NativeIndex (the bytes are copied first).
  Napi::Value IndexFromBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto state = std::make_shared<IndexState>();
      state->index = quiver::Index::deserialize(quiver::owned_bytes(read_bytes(info[0], "buffer")), false);
      return IndexWrap::wrap(info.Env(), state);
    });
  }

  static std::shared_ptr<IndexState> load_faiss(const std::shared_ptr<quiver::ByteSource>& bytes) {
    auto state = std::make_shared<IndexState>();
    state->index = quiver::index_from_faiss(bytes->data(), bytes->size());
    return state;
  }

  // loadFaissIndex(path) → Promise<NativeIndex>: a faiss index file (faiss_io.h), parsed on a worker thread.
  Napi::Value LoadFaiss(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = read_string(info[0], "path");
      auto state = std::make_shared<std::shared_ptr<IndexState>>();
      auto* worker = new PromiseWorker(
          info.Env(), [path, state] { *state = load_faiss(quiver::read_file(path)); },
          [state](Napi::Env env) { return IndexWrap::wrap(env, *state); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value LoadFaissSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return IndexWrap::wrap(info.Env(), load_faiss(quiver::read_file(read_string(info[0], "path"))));
    });
  }

  Napi::Value FaissFromBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return IndexWrap::wrap(info.Env(), load_faiss(quiver::owned_bytes(read_bytes(info[0], "buffer"))));
    });
  }

  Napi::Value LoadCodec(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = read_string(info[0], "path");
      auto state = std::make_shared<std::shared_ptr<CodecState>>();
      auto* worker = new PromiseWorker(
          info.Env(), [path, state] { *state = load_codec(quiver::read_file(path)); },
          [state](Napi::Env env) { return CodecWrap::wrap(env, *state); });
      worker->Queue();
      return worker->Promise();
    });
  }

  Napi::Value LoadCodecSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return CodecWrap::wrap(info.Env(), load_codec(quiver::read_file(read_string(info[0], "path"))));
    });
  }

  Napi::Value CodecFromBuffer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return CodecWrap::wrap(info.Env(), load_codec(quiver::owned_bytes(read_bytes(info[0], "buffer"))));
    });
  }

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
               "level: expected 'scalar', 'avx2', 'avx512' or 'neon', got '" << name << "'");
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

  // gpuInfo() → { compiled, available, name, totalMemory, freeMemory, computeCapability, multiprocessors,
  //              cudaRuntime, cudaDriver, reason }
  Napi::Value GpuInfo(const Napi::CallbackInfo& info) {
    const quiver::GpuStatus s = quiver::gpu_status();
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("compiled", s.compiled);
    o.Set("available", s.available);
    o.Set("name", s.name);
    o.Set("totalMemory", double(s.total_memory));
    o.Set("freeMemory", double(s.free_memory));
    o.Set("computeCapability", std::to_string(s.major) + "." + std::to_string(s.minor));
    o.Set("multiprocessors", s.multiprocessors);
    o.Set("cudaRuntime", s.runtime_version);
    o.Set("cudaDriver", s.driver_version);
    o.Set("reason", s.reason);
    return o;
  }

  Napi::Value HardwareThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(quiver::effective_threads(0)));
  }

  // mergeIndexFiles(inputs: string[], output: string) → Promise<void>: shards.h's merge_index_files on a
  // worker thread (mapping, validating and copying every input is file-sized work).
  Napi::Value MergeIndexFiles(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      QV_CHECK(info[0].IsArray(), InvalidArgument, "files: expected an array of file paths");
      const Napi::Array list = info[0].As<Napi::Array>();
      auto inputs = std::make_shared<std::vector<std::string>>();
      for (uint32_t i = 0; i < list.Length(); ++i) inputs->push_back(read_string(list.Get(i), "files[i]"));
      const std::string output = read_string(info[1], "outFile");
      auto* worker = new PromiseWorker(
          info.Env(), [inputs, output] { quiver::merge_index_files(*inputs, output); },
          [](Napi::Env env) { return env.Undefined(); });
      worker->Queue();
      return worker->Promise();
    });
  }
};

Napi::Value IndexWrap::wrap(Napi::Env env, std::shared_ptr<IndexState> state) {
  QuiverAddon* addon = env.GetInstanceData<QuiverAddon>();
  return addon->index_constructor.New({Napi::External<std::shared_ptr<IndexState>>::New(env, &state)});
}

Napi::Value CodecWrap::wrap(Napi::Env env, std::shared_ptr<CodecState> state) {
  QuiverAddon* addon = env.GetInstanceData<QuiverAddon>();
  return addon->codec_constructor.New({Napi::External<std::shared_ptr<CodecState>>::New(env, &state)});
}

}  // namespace

}  // namespace qvnode

using qvnode::QuiverAddon;
NODE_API_ADDON(QuiverAddon)
