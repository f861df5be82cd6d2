#!/usr/bin/env bash
# Warm hello over HTTP: 10 s of wrk, one client process (1 thread), 16 connections,
# per language, against `fnbox serve` started here. Prints wrk's summary per language.
#   bash bench/warm_hello.sh [runs]     (needs `wrk`: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
port=${PORT:-4599}
data=$(mktemp -d)
command -v wrk >/dev/null || { echo "install wrk first: apt-get install wrk" >&2; exit 1; }
PORT=$port FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=$data fnbox serve >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$port/sys/healthcheck" >/dev/null && break; sleep 0.1; done
curl -sf "localhost:$port/v2/functions/bench" -H 'Content-Type: application/json' -d '{"functions": {
  "hello": {"code": "return \"Hello \" + name;", "parameters": {"name": {"type": "string"}}},
  "pyhello": {"language": "python", "code": "return \"Hello \" + name", "parameters": {"name": {"type": "string"}}}}}' >/dev/null
for function in hello pyhello; do
  for _ in $(seq 200); do curl -sf "localhost:$port/v2/functions/bench/run/$function" -H 'Content-Type: application/json' -d '{"parameters":{"name":"world"}}' >/dev/null; done
  echo "== $function: duration of one warm run (ms), from the service's own answer"
  curl -s "localhost:$port/v2/functions/bench/run/$function" -H 'Content-Type: application/json' -d '{"parameters":{"name":"world"}}'; echo
  for run in $(seq "$runs"); do
    echo "== $function: wrk run $run"
    wrk -t1 -c16 -d10s -s bench/post.lua "http://127.0.0.1:$port/v2/functions/bench/run/$function" | grep -E "Requests/sec|Latency|requests in"
  done
done
