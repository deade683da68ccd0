// A downstream program: uses each public type once and fails loudly if anything is off.
#include <picoring/picoring.hpp>

#include <cstdio>

int main() {
  picoring::PicoRing<int> ring(100);
  picoring::PicoQueue<double> queue(100);
  picoring::PicoByteStream stream(100);
  const bool ok = ring.push(1) && queue.try_push(2.0) && stream.write("3") == 1 && ring.pop() == 1 &&
                  queue.try_pop() == 2.0 && stream.readable_view() == "3";
  std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
