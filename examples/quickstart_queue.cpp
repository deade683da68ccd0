#include <picoring/picoring.hpp>

#include <cassert>
#include <cstdint>
#include <cstdio>

int main() {
  picoring::PicoQueue<std::uint32_t> queue(1024);

  // Write directly into the ring: exactly 3 contiguous slots, or an empty span.
  if (auto slots = queue.reserve(3); !slots.empty()) {
    slots[0] = 10;
    slots[1] = 20;
    slots[2] = 30;
    queue.commit(3);
  }

  // Read without copying, then release what was processed.
  auto items = queue.peek();
  assert(items.size() == 3 && items[2] == 30);
  queue.release(items.size());
  std::printf("queue empty: %s\n", queue.empty() ? "yes" : "no");
}
