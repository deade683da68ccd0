#!/usr/bin/env bash
# Network scenario check: the server on an ephemeral loopback port, driven by curl (keep-alive
# over several URLs, a binary POST echoed back), our own client (pipelined requests sent one
# byte at a time and in random pieces, every response checked), ab (keep-alive, bounded count)
# and wrk (bounded time). Usage: check.sh HTTP_SERVER_BINARY WORK_DIR
set -euo pipefail
bin=$1 work=$2
for tool in curl ab wrk; do
  command -v $tool >/dev/null || { echo "scenario network: needs $tool (apt-get install curl apache2-utils wrk)"; exit 1; }
done
mkdir -p "$work"
rm -f "$work/port"
"$bin" --port 0 --port-file "$work/port" >"$work/server.txt" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
url=http://127.0.0.1:$port

got=$(curl -sS --max-time 10 "$url/hello/one" "$url/hello/two" "$url/hello/three")
[ "$got" = $'hello /hello/one\nhello /hello/two\nhello /hello/three' ] || { echo "curl keep-alive: got '$got'"; exit 1; }
echo "  curl: three GETs over one connection answered"
head -c 3000 /dev/urandom >"$work/body.bin"
curl -sS --max-time 10 --data-binary @"$work/body.bin" "$url/echo" -o "$work/echoed.bin"
cmp "$work/body.bin" "$work/echoed.bin"
echo "  curl: 3000-byte binary POST echoed back intact"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/missing")" = 404 ] || { echo "curl: 404 expected"; exit 1; }

timeout 60 "$bin" --client "$port" --requests 300 --split bytes --seed 1 | sed 's/^/  /'
timeout 60 "$bin" --client "$port" --requests 3000 --split random --seed 2 | sed 's/^/  /'

timeout 60 ab -k -q -n 20000 -c 8 "$url/hello/ab" >"$work/ab.txt"
grep -q "^Complete requests: *20000$" "$work/ab.txt" || { cat "$work/ab.txt"; exit 1; }
grep -q "^Failed requests: *0$" "$work/ab.txt" || { cat "$work/ab.txt"; exit 1; }
grep -q "^Keep-Alive requests: *20000$" "$work/ab.txt" || { cat "$work/ab.txt"; exit 1; }
! grep -q "Non-2xx" "$work/ab.txt" || { cat "$work/ab.txt"; exit 1; }
echo "  ab -k -n 20000 -c 8: all complete, 0 failed, all keep-alive, $(awk '/^Requests per second/ { print $4 }' "$work/ab.txt") requests/s"

timeout 30 wrk -t1 -c8 -d2s "$url/hello/wrk" >"$work/wrk.txt"
! grep -q "Non-2xx\|Socket errors" "$work/wrk.txt" || { cat "$work/wrk.txt"; exit 1; }
echo "  wrk -c8 -d2s: no errors, $(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.txt") requests/s"

kill -TERM $server
wait $server
trap - EXIT
grep '^network:' "$work/server.txt"
grep -q ", 0 rejected," "$work/server.txt"
laps=$(sed -n 's/.*wrapped \([0-9]*\) times.*/\1/p' "$work/server.txt")
[ "${laps:-0}" -ge 100 ] || { echo "requests crossed the end of the ring only ${laps:-0} times"; exit 1; }
