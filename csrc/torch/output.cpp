#include "output.h"

#include <ATen/EmptyTensor.h>

#include <cstdlib>
#include <deque>
#include <mutex>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fusedgan {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kLargeBytes = 2 * kHugePage;
constexpr size_t kCachedBytes = size_t(256) << 20;

// Large CPU outputs come from blocks that earlier outputs of the same size have freed: their
// pages are mapped already, where a fresh buffer pays a page fault per page on its first write
// (measured: more than the arithmetic of a 16M-element BCE backward). A block is reused only
// once the tensor that held it is freed, so no two live tensors share memory; at most
// kCachedBytes of freed blocks are kept, the oldest let go first. Fresh blocks are aligned to
// and advised to use transparent huge pages: 32 page faults for 64 MB instead of 16K.
class ReusingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    Block* block = take(bytes);
    if (!block) block = fresh(bytes);
    return {block->data, block, &release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static ReusingAllocator& instance() {
    static auto* allocator = new ReusingAllocator();  // never destroyed: tensors may outlive static destructors
    return *allocator;
  }

 private:
  struct Block {
    void* data;
    size_t bytes;
  };

  Block* take(size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
      if ((*it)->bytes != bytes) continue;
      Block* block = *it;
      free_.erase(std::next(it).base());
      cached_bytes_ -= bytes;
      return block;
    }
    return nullptr;
  }

  static Block* fresh(size_t bytes) {
    void* data = nullptr;
    if (posix_memalign(&data, kHugePage, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(data, bytes, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
    return new Block{data, bytes};
  }

  static void release(void* context) {
    auto* block = static_cast<Block*>(context);
    ReusingAllocator& self = instance();
    std::deque<Block*> let_go;
    {
      const std::lock_guard<std::mutex> lock(self.mutex_);
      self.free_.push_back(block);
      self.cached_bytes_ += block->bytes;
      while (self.cached_bytes_ > kCachedBytes) {
        let_go.push_back(self.free_.front());
        self.cached_bytes_ -= self.free_.front()->bytes;
        self.free_.pop_front();
      }
    }
    for (Block* old : let_go) {
      std::free(old->data);
      delete old;
    }
  }

  std::mutex mutex_;
  std::deque<Block*> free_;  // the most recently freed last
  size_t cached_bytes_ = 0;
};

}  // namespace

at::Tensor new_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t bytes = size_t(c10::multiply_integers(sizes)) * options.dtype().itemsize();
  if (options.device().is_cpu() && bytes >= kLargeBytes) {
    return at::detail::empty_generic(sizes, &ReusingAllocator::instance(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                     options.dtype().toScalarType(), std::nullopt);
  }
  return at::empty(sizes, options);
}

}  // namespace fusedgan
