#include <picoring/picoring.hpp>

#include <cassert>
#include <cstdio>
#include <vector>

int main() {
  picoring::PicoRing<float> ring(1024);  // capacity rounded up to whole pages: 1024 floats here
  std::vector<float> block(300, 0.5f);
  while (ring.push_slice(block)) {        // all or nothing
    ring.release(200);                    // drop a little less than we push
    auto window = ring.readable_slice();  // every element as one span, wrapped data included
    float sum = 0;
    for (float x : window) sum += x;  // no wrap logic, no copy
    assert(sum == 0.5f * static_cast<float>(window.size()));
  }
  std::printf("ring full: %zu of %zu\n", ring.size(), ring.capacity());
}
