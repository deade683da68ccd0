#!/usr/bin/env bash
# The HTTP scenario side by side with nginx (one worker, access log off), in the same run:
# ab without keep-alive (a new connection per request: the cost of setting one up) and with it,
# alternating the two servers, 3 rounds, median requests/s of each.
# Usage: compare_nginx.sh HTTP_SERVER_BINARY WORK_DIR [REQUESTS (default 20000)]
# Needs nginx and ab (apt-get install nginx-light apache2-utils); prints a table, exits 0.
set -euo pipefail
bin=$1 work=$2 n=${3:-20000}
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "compare_nginx: needs nginx"; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$work/nginx"
# nginx reads -c relative to its -p prefix: with a relative WORK_DIR both must be absolute.
work=$(cd "$work" && pwd)
rm -f "$work/port"
"$bin" --port 0 --port-file "$work/port" >"$work/server.txt" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
nport=$((port + 1))
while (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null; do nport=$((nport + 1)); done
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location /hello/ { default_type text/plain; return 200 "hello \$uri\n"; }
  }
}
CONF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf"
sleep 0.3
rate() {  # url, extra ab flags
  ab -q -n "$n" -c 8 $2 "$1" 2>/dev/null | awk '/^Requests per second/ { print $4 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
: >"$work/rates"
for round in 1 2 3; do
  for mode in close keepalive; do
    flag=""; [ $mode = keepalive ] && flag="-k"
    echo "picoring $mode $(rate "http://127.0.0.1:$port/hello/x" "$flag")" >>"$work/rates"
    echo "nginx $mode $(rate "http://127.0.0.1:$nport/hello/x" "$flag")" >>"$work/rates"
  done
done
echo "| ab -n $n -c 8, median of 3 | picoring http_server | nginx (1 worker) | ratio |"
echo "|---|---|---|---|"
for mode in close keepalive; do
  p=$(awk -v m=$mode '$1 == "picoring" && $2 == m { print $3 }' "$work/rates" | median)
  g=$(awk -v m=$mode '$1 == "nginx" && $2 == m { print $3 }' "$work/rates" | median)
  label="new connection per request"; [ $mode = keepalive ] && label="keep-alive (-k)"
  echo "| $label | $p req/s | $g req/s | $(awk -v a="$p" -v b="$g" 'BEGIN { printf "%.2fx", a / b }') |"
done
