#!/usr/bin/env bash
# `sdk-cdn serve` under steady load while releases land (issue 18.5).
#
#   scripts/soak.sh                              # 60 s, 64 connections, 20 releases, local store
#   scripts/soak.sh --duration 20 --releases 5   # a shorter run
#   SDK_CDN_BIN=target/release/sdk-cdn scripts/soak.sh
#
# Starts `serve` on 127.0.0.1 over a fresh local store, drives it with
# --connections keep-alive clients (a Python load loop: every body is
# checked, which wrk cannot do), and meanwhile runs --releases publishes
# of new versions (each promoted to latest/) against the same store. It
# stops by itself after --duration seconds or --max-requests requests.
#
# Reports, and exits 1 unless all hold:
#   - zero responses other than 2xx/304, zero connection errors;
#   - every /api/sdk/sri body is a complete, valid index (parses, has files);
#   - every /sdk/latest/ body is exactly one of the published builds;
#   - each new version is in the served index within --refresh plus one
#     (the slowest) request after its publish exited; the load goes on past
#     --duration until the last release had that long to show up;
#   - resident memory of serve idle at start, under load at 10% of the run
#     (warm), midway and at the end, and its slope in KiB per release after
#     warm-up (a least-squares fit of the samples every 10% against the
#     releases landed by then): reported, for "RSS flat" (docs/RELIABILITY.md).
#
# Needs: python3, a built sdk-cdn (`cargo build`; this script builds the
# debug binary if SDK_CDN_BIN is unset and it is missing). Listens on
# 127.0.0.1 only; everything lives in a temporary directory removed at exit.
set -euo pipefail

DURATION=60
CONNECTIONS=64
RELEASES=20
REFRESH=1
MAX_REQUESTS=5000000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --releases) RELEASES=$2; shift 2 ;;
    --refresh) REFRESH=$2; shift 2 ;;
    --max-requests) MAX_REQUESTS=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "soak.sh: python3 is needed (apt-get install python3)" >&2; exit 2; }
BIN=${SDK_CDN_BIN:-target/debug/sdk-cdn}
if [ ! -x "$BIN" ]; then
  [ -z "${SDK_CDN_BIN:-}" ] || { echo "soak.sh: $BIN is not an executable" >&2; exit 2; }
  cargo build --quiet
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

store="$work/cdn"
# Build N: the bytes every check below recomputes (python: body()).
build() {
  local n=$1 dir="$work/build-$1"
  mkdir -p "$dir"
  printf 'window.HaloAgents={v:%s};' "$n" >"$dir/haloagents.umd.js"
  printf '.ha-launcher{order:%s}' "$n" >"$dir/haloagents.css"
  echo "$dir"
}
publish() {
  (cd "$work" && "$BIN" -q --store "$store" publish "$(build "$1")" --version "1.$1.0" >/dev/null)
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# One sample: RSS, its anonymous part (heap, stacks) and threads, all of serve; releases landed so far.
sample() {
  local landed=0
  [ ! -f "$work/published.txt" ] || landed=$(wc -l <"$work/published.txt")
  awk -v landed="$landed" '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^Threads:/ {t=$2} END {print r, a, t, landed}' "/proc/$1/status"
}

publish 0
"$BIN" --store "$store" serve --addr 127.0.0.1:0 --refresh "$REFRESH" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 1 300); do
  grep -q '^listening on http://' "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
addr=$(sed -n 's|^listening on http://||p' "$work/serve.log" | head -n1)
[ -n "$addr" ] || { echo "soak.sh: serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
rss_start=$(sample "$serve_pid")

# Releases, spread over 80% of the run; each line: version, time its publish exited.
(
  gap=$(python3 -c "print($DURATION * 0.8 / $RELEASES)")
  for n in $(seq 1 "$RELEASES"); do
    sleep "$gap"
    publish "$n" || { echo "publish 1.$n.0 failed" >&2; exit 1; }
    echo "1.$n.0 $(date +%s.%N)" >>"$work/published.txt"
  done
  touch "$work/published.done"
) &
publisher=$!
# RSS every 1% of the run. Each reload briefly holds the new index's
# encoders (brotli's alone is ~32 MiB, given back when it is done), so
# single samples can land on such a peak: the report takes the lowest sample
# of each 10% window, i.e. what stays resident, and shows the peak apart.
# The first window (load warm) tells load-sized buffers from growth, the
# series tells a plateau from a leak.
(
  step=$(python3 -c "print($DURATION * 0.01)")
  for _ in $(seq 1 99); do sleep "$step"; sample "$serve_pid" >>"$work/rss_series"; done
) &
sampler=$!

python3 - "$addr" "$DURATION" "$CONNECTIONS" "$MAX_REQUESTS" "$RELEASES" "$work/load.json" "$work/published.done" "$REFRESH" <<'PY'
import http.client, json, os, sys, threading, time
addr, duration, connections, max_requests, releases, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
done_marker, refresh = sys.argv[7], float(sys.argv[8])
host, port = addr.rsplit(":", 1)
bodies = {("window.HaloAgents={v:%d};" % n).encode() for n in range(releases + 1)}
targets = ["/api/sdk/sri", "/sdk/latest/haloagents.umd.js", "/api/sdk/sri/latest", "/sdk/1.0.0/haloagents.css"]
lock = threading.Lock()
stats = {"requests": 0, "by_status": {}, "bad": [], "errors": 0, "latencies": [], "first_seen": {}}
deadline = time.time() + duration
hard_deadline = time.time() + 3 * duration  # publishes slower than planned: keep loading, but stop

def running():
    # Until --duration, and in any case until the last release had a refresh
    # and a second to show up (bounded by hard_deadline).
    now = time.time()
    if now >= hard_deadline:
        return False
    if now < deadline:
        return True
    try:
        return now < os.path.getmtime(done_marker) + refresh + 1
    except OSError:
        return True

def check(target, status, body):
    if status not in (200, 304):
        return "status %d" % status
    if target == "/api/sdk/sri":
        try:
            index = json.loads(body)
        except ValueError as e:
            return "index does not parse (%s), %d bytes" % (e, len(body))
        if not isinstance(index.get("files"), dict) or "version" not in index:
            return "index lacks version/files"
        now = time.time()
        with lock:
            for key in index["files"]:
                stats["first_seen"].setdefault(key.split("/", 1)[0], now)
    if target.startswith("/sdk/latest/") and body not in bodies:
        return "latest body is none of the builds: %r" % body[:80]
    return None

def worker(n):
    conn, i = None, n
    while running():
        with lock:
            if stats["requests"] >= max_requests:
                return
        target = targets[i % len(targets)]
        i += 1
        started = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("GET", target)
            response = conn.getresponse()
            body = response.read()
        except Exception as e:
            with lock:
                stats["errors"] += 1
                stats["bad"].append("%s: %s" % (target, e))
            conn = None
            continue
        took = time.time() - started
        problem = check(target, response.status, body)
        with lock:
            stats["requests"] += 1
            stats["by_status"][response.status] = stats["by_status"].get(response.status, 0) + 1
            stats["latencies"].append(took)
            if problem:
                stats["bad"].append("%s: %s" % (target, problem))

started = time.time()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
for t in threads: t.start()
for t in threads: t.join()
stats["seconds"] = time.time() - started
lat = sorted(stats.pop("latencies")) or [0]
stats["p50_ms"] = round(lat[len(lat) // 2] * 1000, 1)
stats["p99_ms"] = round(lat[int(len(lat) * 0.99)] * 1000, 1)
stats["max_ms"] = round(lat[-1] * 1000, 1)
json.dump(stats, open(out, "w"))
PY
wait "$publisher" || { echo "soak.sh: a publish failed" >&2; exit 1; }
kill "$sampler" 2>/dev/null || true
rss_end=$(sample "$serve_pid")

python3 - "$work/load.json" "$work/published.txt" "$REFRESH" "$RELEASES" "$CONNECTIONS" "$rss_start" "$rss_end" "$work/rss_series" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
published = dict(line.split() for line in open(sys.argv[2]))
refresh, releases, connections = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
# Samples: (RSS KiB, anonymous KiB, threads, releases landed).
start, end = [int(x) for x in sys.argv[6].split()], [int(x) for x in sys.argv[7].split()]
try:
    series = [[int(x) for x in line.split()] for line in open(sys.argv[8])]
except OSError:
    series = []
# What stays resident in each 10% window from 10% on: its lowest sample.
floors = [min(series[i:i + 10]) for i in range(9, len(series), 10)] or [start]
peak = max(series + [start, end])
warm, mid = floors[0], floors[len(floors) // 2]
# KiB per release after warm-up: least squares of RSS against releases landed.
fit = floors + [end]
n = len(fit)
mean_x, mean_y = sum(s[3] for s in fit) / n, sum(s[0] for s in fit) / n
sxx = sum((s[3] - mean_x) ** 2 for s in fit)
slope = sum((s[3] - mean_x) * (s[0] - mean_y) for s in fit) / sxx if sxx else 0.0
ok = True
lags = []
for version, at in sorted(published.items()):
    seen = stats["first_seen"].get(version)
    if seen is None:
        print("NOT SEEN: %s never appeared in a served index" % version); ok = False; continue
    lags.append(max(0.0, seen - float(at)))
# "Within --refresh plus one request": the slowest request of the run.
bound = refresh + stats["max_ms"] / 1000
late = [l for l in lags if l > bound]
non_ok = sum(n for s, n in stats["by_status"].items() if s not in ("200", "304"))
print("soak: %.0f s, %d connections, %d releases (refresh %.1f s)" % (stats["seconds"], connections, releases, refresh))
print("requests:        %d (%.0f/s), by status %s" % (stats["requests"], stats["requests"] / stats["seconds"], stats["by_status"]))
print("latency:         p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (stats["p50_ms"], stats["p99_ms"], stats["max_ms"]))
print("failures:        %d non-2xx/304, %d connection errors, %d bad bodies" % (non_ok, stats["errors"], len(stats["bad"]) - stats["errors"]))
for line in stats["bad"][:10]: print("  " + line)
print("visibility:      %d/%d versions seen; lag after publish exited: max %.2f s (bound refresh + slowest request = %.2f s)" % (len(lags), len(published), max(lags or [0]), bound))
print("serve RSS:       %d KiB idle at start, %d KiB warm (10%%), %d KiB midway, %d KiB at the end; peak %d KiB" % (start[0], warm[0], mid[0], end[0], peak[0]))
print("RSS every 10%%:   %s KiB (lowest of each 10%% window)" % ", ".join(str(s[0]) for s in floors))
print("RSS slope:       %.1f KiB per release after warm-up (%+d KiB from 10%% to the end, %d releases)" % (slope, end[0] - warm[0], end[3] - warm[3]))
print("anonymous RSS:   %d KiB warm, %d KiB at the end; threads %d warm, %d at the end" % (warm[1], end[1], warm[2], end[2]))
if non_ok or stats["bad"] or late or len(published) != releases or not ok:
    print("FAIL"); sys.exit(1)
print("OK")
PY
