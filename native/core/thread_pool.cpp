#include "thread_pool.h"

#include <algorithm>
#include <exception>

namespace quiver {

namespace {

// Shared state of one parallel_for call; workers hold it through a shared_ptr so that a worker that dequeues
// the task after the loop has finished finds no chunk left and returns without touching freed memory.
struct LoopState {
  size_t n = 0, grain = 1, chunks = 0;
  const std::function<void(size_t, size_t)>* body = nullptr;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::condition_variable done_cv;
  size_t done = 0;  // chunks claimed and finished (or skipped after a failure); guarded by mutex
  std::exception_ptr error;

  // Runs chunks until none is left. Safe to call from any number of threads.
  void run() {
    for (;;) {
      const size_t chunk = next.fetch_add(1);
      if (chunk >= chunks) return;
      if (!failed.load(std::memory_order_relaxed)) {
        const size_t begin = chunk * grain;
        const size_t end = std::min(n, begin + grain);
        try {
          (*body)(begin, end);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (++done == chunks) done_cv.notify_all();
    }
  }
};

}  // namespace

ThreadPool::ThreadPool(size_t workers) {
  threads_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::worker_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& body,
                              size_t max_threads) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t chunks = (n + grain - 1) / grain;
  size_t threads = max_threads == 0 ? threads_.size() + 1 : max_threads;
  threads = std::min({threads, chunks, threads_.size() + 1});
  if (threads <= 1) {
    for (size_t begin = 0; begin < n; begin += grain) body(begin, std::min(n, begin + grain));
    return;
  }
  auto state = std::make_shared<LoopState>();
  state->n = n;
  state->grain = grain;
  state->chunks = chunks;
  state->body = &body;
  for (size_t i = 0; i + 1 < threads; ++i) enqueue([state] { state->run(); });
  state->run();
  {
    std::unique_lock<std::mutex> lock(state->mutex);
    state->done_cv.wait(lock, [&] { return state->done == state->chunks; });
  }
  if (state->error) std::rethrow_exception(state->error);
}

namespace {
// Hardware threads, read once: glibc answers hardware_concurrency() by reading /sys on every call, which cost a
// small search (one query, threads left to the default) about half its time.
size_t hardware_threads() {
  static const size_t count = std::max<size_t>(std::thread::hardware_concurrency(), 1);
  return count;
}
}  // namespace

ThreadPool& default_pool() {
  static ThreadPool pool(hardware_threads() - 1);
  return pool;
}

size_t effective_threads(int requested) {
  if (requested > 0) return size_t(requested);
  return hardware_threads();
}

}  // namespace quiver
