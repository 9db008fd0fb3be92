// A small fixed thread pool with a work-sharing parallel_for. No OpenMP: the pool is ours so that a Node
// process running many async calls at once never oversubscribes the machine (all calls share one pool).
//
// parallel_for is safe to call concurrently from several threads and from inside another parallel_for:
// the calling thread always works on its own loop too, so a loop finishes even when every worker is busy.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace quiver {

class ThreadPool {
 public:
  explicit ThreadPool(size_t workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t workers() const { return threads_.size(); }

  // Calls body(begin, end) over [0, n) split in chunks of at most `grain` items, using at most `max_threads`
  // threads including the caller (0 = all workers + caller). The first exception thrown by any chunk is
  // rethrown in the caller once every started chunk has finished; the remaining chunks are skipped.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& body,
                    size_t max_threads = 0);

 private:
  void worker_loop();
  void enqueue(std::function<void()> task);

  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// The process-wide pool (hardware threads − 1 workers; the caller makes up the last one). Created on first use.
ThreadPool& default_pool();

// Threads a call may use: `requested` if > 0, else every hardware thread.
size_t effective_threads(int requested);

}  // namespace quiver
