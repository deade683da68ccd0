// Platform-independent parts of MirrorBuffer: sizing, errors, ownership.
#include <atomic>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "mirror_platform.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/shared_queue.hpp"

namespace picoring {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "picoring"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::zero_size:
        return "size or capacity of zero";
      case errc::size_overflow:
        return "size too large for the address space";
      case errc::mirror_mismatch:
        return "the two views do not show the same memory";
      case errc::corrupt_shared_state:
        return "the shared queue's memory is not in a valid state";
    }
    return "unknown picoring error";
  }
};

}  // namespace

namespace detail {

void write_each_page(std::byte* at, std::size_t bytes) noexcept {
  const std::size_t page = query_granularity();
  for (std::size_t off = 0; off < bytes; off += page) {
    // A fetch_or of 0 would not do: compilers may turn an idempotent read-modify-write into a
    // fenced load, which stores nothing.
    std::atomic_ref<unsigned char> byte(*reinterpret_cast<unsigned char*>(at + off));
    unsigned char seen = byte.load(std::memory_order_relaxed);
    while (!byte.compare_exchange_weak(seen, seen, std::memory_order_relaxed)) {
    }
  }
}

}  // namespace detail

const std::error_category& picoring_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), picoring_category()}; }

std::string Error::message() const {
  return std::string("picoring: ") + (step != nullptr ? step : "") + " failed: " + code.message();
}

void throw_error(const Error& err) {
  if (err.code == errc::zero_size) throw std::invalid_argument(err.message());
  if (err.code == errc::size_overflow) throw std::length_error(err.message());
  throw std::system_error(err.code, std::string("picoring: ") + err.step + " failed");
}

void detail::throw_out_of_range(const char* what) { throw std::out_of_range(what); }
void detail::throw_length_error(const char* what) { throw std::length_error(what); }
void detail::throw_invalid_argument(const char* what) { throw std::invalid_argument(what); }
void detail::throw_logic_error(const char* what) { throw std::logic_error(what); }
void detail::throw_corrupt(const char* what) {
  throw std::system_error(make_error_code(errc::corrupt_shared_state), what);
}

std::size_t allocation_granularity() noexcept {
  static const std::size_t granularity = detail::query_granularity();
  return granularity;
}

namespace {

// mirror_size_for with a given granularity (the page size, or a huge page size).
std::size_t size_for(std::size_t min_elements, std::size_t element_size, std::size_t granularity, Error& err) noexcept {
  err = {};
  if (min_elements == 0 || element_size == 0) {
    err = {make_error_code(errc::zero_size), "size computation"};
    return 0;
  }
  constexpr std::size_t max_size = std::numeric_limits<std::size_t>::max();
  // Both views must fit in the address space and every byte offset in a std::ptrdiff_t.
  constexpr std::size_t limit = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 2;
  if (granularity == 0) {  // no platform query returns 0; never divide by it if one did
    err = {std::make_error_code(std::errc::not_supported), "query page size (returned 0)"};
    return 0;
  }
  // The unit is lcm(granularity, element_size): the smallest size that is both a whole
  // number of pages and a whole number of elements.
  const std::size_t factor = granularity / std::gcd(granularity, element_size);
  if (element_size > max_size / factor || min_elements > max_size / element_size) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return 0;
  }
  const std::size_t unit = factor * element_size;
  const std::size_t min_bytes = min_elements * element_size;
  const std::size_t units = min_bytes / unit + (min_bytes % unit != 0 ? 1 : 0);
  if (units > limit / unit) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return 0;
  }
  return units * unit;
}

}  // namespace

std::size_t huge_page_size(HugePages kind) noexcept { return detail::query_huge_page_size(kind); }

std::size_t mirror_size_for(std::size_t min_elements, std::size_t element_size, Error& err) noexcept {
  return size_for(min_elements, element_size, allocation_granularity(), err);
}

MirrorBuffer::MirrorBuffer(std::size_t min_elements, std::size_t element_size, MirrorOptions options) {
  Error err;
  *this = create(min_elements, element_size, options, err);
  if (err) throw_error(err);
}

MirrorBuffer MirrorBuffer::create(std::size_t min_elements, std::size_t element_size, MirrorOptions options,
                                  Error& err) noexcept {
  MirrorBuffer buffer;
  if (options.fork != ForkPolicy::exclude && options.fork != ForkPolicy::share) {
    err = {std::make_error_code(std::errc::invalid_argument), "select fork policy"};
    return buffer;
  }
  if (options.residency != Residency::on_demand && options.residency != Residency::populate &&
      options.residency != Residency::lock && options.residency != Residency::lock_if_allowed) {
    err = {std::make_error_code(std::errc::invalid_argument), "select residency"};
    return buffer;
  }
  if (options.numa_node < -1) {
    err = {std::make_error_code(std::errc::invalid_argument), "select NUMA node"};
    return buffer;
  }
  std::size_t granularity = allocation_granularity();
  switch (options.huge_pages) {
    case HugePages::none:
      break;
    case HugePages::transparent:
      // A hint: where the system has no transparent huge pages, base pages are what it asked.
      if (const std::size_t huge = detail::query_huge_page_size(HugePages::transparent); huge > granularity)
        granularity = huge;
      break;
    case HugePages::explicit_2mb:
    case HugePages::explicit_1gb:
      if (const std::size_t huge = detail::query_huge_page_size(options.huge_pages); huge != 0) {
        granularity = huge > granularity ? huge : granularity;
      } else if (options.huge_pages_fallback) {
        options.huge_pages = HugePages::none;
      } else {
        err = {std::make_error_code(std::errc::not_supported), "huge pages (this system offers none of that size)"};
        return buffer;
      }
      break;
    default:
      err = {std::make_error_code(std::errc::invalid_argument), "select huge pages"};
      return buffer;
  }
  const std::size_t size = size_for(min_elements, element_size, granularity, err);
  if (err) return buffer;
  const detail::Mapped mapped = detail::map_mirror(size, options, err);
  std::byte* const base = mapped.base;
  if (base == nullptr) return buffer;
  // Prove the mirror before anyone relies on it: a byte written through one view must be
  // read back through the other, in both directions. Touches only the first page.
  volatile std::byte* first = base;
  volatile std::byte* second = base + size;
  first[0] = std::byte{0xA5};
  const bool forward = second[0] == std::byte{0xA5};
  second[0] = std::byte{0x00};
  const bool backward = first[0] == std::byte{0x00};
  if (!forward || !backward) {
    detail::unmap_mirror(base, size, mapped.locked);
    err = {make_error_code(errc::mirror_mismatch), "verify mirror"};
    return buffer;
  }
  buffer.base_ = base;
  buffer.size_ = size;
  buffer.backend_ = mapped.backend;
  buffer.owner_ = options.fork == ForkPolicy::exclude ? detail::process_id() : 0;
  buffer.page_size_ = mapped.page_size;
  buffer.locked_ = mapped.locked;
  return buffer;
}

MirrorBuffer::MirrorBuffer(MirrorBuffer&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      backend_(std::exchange(other.backend_, Backend::automatic)),
      owner_(std::exchange(other.owner_, 0)),
      page_size_(std::exchange(other.page_size_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

MirrorBuffer& MirrorBuffer::operator=(MirrorBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    backend_ = std::exchange(other.backend_, Backend::automatic);
    owner_ = std::exchange(other.owner_, 0);
    page_size_ = std::exchange(other.page_size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

MirrorBuffer::~MirrorBuffer() { reset(); }

bool MirrorBuffer::inherited() const noexcept { return owner_ != 0 && owner_ != detail::process_id(); }

void MirrorBuffer::reset() noexcept {
  // An inherited buffer's range is not ours in this process: the child may have mapped
  // something else there since the fork, and munmap would remove it.
  if (base_ != nullptr && !inherited()) detail::unmap_mirror(base_, size_, locked_);
  base_ = nullptr;
  size_ = 0;
  backend_ = Backend::automatic;
  owner_ = 0;
  page_size_ = 0;
  locked_ = false;
}

const char* to_string(Backend b) noexcept {
  switch (b) {
    case Backend::automatic:
      return "automatic";
    case Backend::memfd:
      return "memfd";
    case Backend::posix_shm:
      return "posix_shm";
    case Backend::tmpfile:
      return "tmpfile";
    case Backend::windows_placeholder:
      return "windows_placeholder";
    case Backend::windows_legacy:
      return "windows_legacy";
  }
  return "unknown";
}

}  // namespace picoring
