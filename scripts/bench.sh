#!/usr/bin/env bash
# sdk-cdn against its baselines, on this machine, interleaved.
#
#   scripts/bench.sh                  # everything (about 15 minutes on 2 cores)
#   scripts/bench.sh --quick          # small inputs, 1-2 rounds: a smoke run
#   scripts/bench.sh --only "hash serve" --rounds 7 --heavy-rounds 5 --keep
#
# Builds the release binaries (`sdk-cdn`, and `examples/s3_bench_server`,
# the in-process S3 test server as a process), generates every input in a
# temporary directory, runs ours and each baseline alternately for several
# rounds (so that other load on a shared machine hits both alike), and
# prints a table of medians and ratios (BENCHMARKS.md explains each row).
# Raw measurements stay in the work directory with --keep.
#
# Sections (--only): hash local s3 rtt small moto noop serve growth criterion,
# and `build` (a cold `cargo build --release` in a fresh target directory,
# about 10 minutes here; not run unless named)
#
# `rtt` repeats the S3 comparison with small files on a server that answers
# every request after --rtt-ms (default 20) ms, like a real S3 region, where
# the number of requests in flight matters more than anyone's CPU. `small`
# publishes the real 3-file SDK to a server answering after --small-rtt-ms
# (default 50) ms and counts sequential round trips (the server measures the
# longest chain of requests each sent after the one before was answered),
# against the shell script a user would write with `aws s3 cp`.
#
# Needs: openssl, nginx, wrk, rclone, taskset, curl, /usr/bin/time
# (Debian: apt-get install openssl nginx wrk rclone util-linux curl time),
# awscli and moto 5.2.5 (pip install awscli 'moto[server]==5.2.5'). Missing
# ones are installed when running as root with apt-get and pip available;
# otherwise the script stops and names them.
set -euo pipefail

QUICK=0
KEEP=0
ROUNDS=""
HEAVY_ROUNDS=""
SECTIONS="hash local s3 rtt small moto noop serve growth criterion"
RTT_MS=20
SMALL_RTT_MS=50
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --heavy-rounds) HEAVY_ROUNDS=$2; shift ;;
    --only) SECTIONS=$2; shift ;;
    --rtt-ms) RTT_MS=$2; shift ;;
    --small-rtt-ms) SMALL_RTT_MS=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  TREE_N=1000; BIG_MIB=32; SMALL_N=200; GROWTH_V=50; SERVE_SECS=2; ROUNDS=${ROUNDS:-2}; HEAVY_ROUNDS=${HEAVY_ROUNDS:-1}
else
  TREE_N=10000; BIG_MIB=512; SMALL_N=2000; GROWTH_V=1000; SERVE_SECS=10; ROUNDS=${ROUNDS:-5}; HEAVY_ROUNDS=${HEAVY_ROUNDS:-3}
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/sdk-cdn-bench.XXXXXX")
IN=$W/in
OUT=$W/out
RESULTS=$W/results.csv
IMMUTABLE="public, max-age=31536000, immutable"
mkdir -p "$IN" "$OUT" "$W/bin" "$W/m"
echo "section,label,round,seconds,max_rss_kb,cpu_s,server_cpu_s,requests,extra" > "$RESULTS"

PIDS=()
cleanup() {
  exec 8>&- 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "raw results kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

log() { echo "[bench $(date +%T)] $*" >&2; }
die() { log "error: $*"; exit 1; }
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a - b }'; }

# --- tools -------------------------------------------------------------------

ensure_tools() {
  local missing=() pair
  for pair in openssl:openssl nginx:nginx wrk:wrk rclone:rclone taskset:util-linux curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    else
      die "missing tools: ${missing[*]} (Debian: sudo apt-get install ${missing[*]})"
    fi
  fi
  command -v aws >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check awscli \
    || die "aws CLI missing: pip install awscli"
  python3 -c 'import moto' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' \
    || die "moto missing: pip install 'moto[server]==5.2.5'"
  [ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash 5 needed (EPOCHREALTIME)"
}

# --- measuring ---------------------------------------------------------------

# measure SECTION LABEL ROUND CMD...: wall time, max RSS and CPU of CMD (its
# stdout discarded), plus whatever SERVER_CPU / REQUESTS / EXTRA hold.
measure() {
  local section=$1 label=$2 round=$3 t0 t1 rss user sys
  shift 3
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%M %U %S' -o "$W/time.out" "$@" >/dev/null 2>"$W/cmd.err"; then
    log "FAILED: $label: $*"; tail -5 "$W/cmd.err" >&2; return 1
  fi
  t1=$EPOCHREALTIME
  read -r rss user sys < <(tail -1 "$W/time.out")
  echo "$section,$label,$round,$(sub "$t1" "$t0"),$rss,$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}'),${SERVER_CPU:-},${REQUESTS:-},${EXTRA:-}" >> "$RESULTS"
}

record() { echo "$1,$2,$3,$4,,,,,${5:-}" >> "$RESULTS"; }

proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# --- inputs ------------------------------------------------------------------

# gen DIR COUNT SIZE: COUNT random files of SIZE bytes, 250 per directory.
gen() {
  python3 - "$@" <<'EOF'
import os, sys
root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    d = os.path.join(root, f"chunks{i // 250:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"c{i:05d}.js"), "wb") as f:
        f.write(os.urandom(size))
EOF
}

prepare_inputs() {
  [ -d "$IN/tree" ] && return
  log "generating inputs in $IN (tree $TREE_N x 4 KiB, one $BIG_MIB MiB file, publish set $SMALL_N x 4 KiB + the big file)"
  gen "$IN/tree" "$TREE_N" 4096
  mkdir -p "$IN/big" "$IN/pub"
  head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom > "$IN/big/sdk.bin"
  ln "$IN/big/sdk.bin" "$IN/pub/sdk.bin"
  gen "$IN/pub/assets" "$SMALL_N" 4096
  gen "$IN/small" "$SMALL_N" 4096
  gen "$IN/tiny" $((SMALL_N / 10)) 4096
  cat "$IN"/big/sdk.bin > /dev/null
}

# --- sections ----------------------------------------------------------------

section_hash() {
  log "hash: tree of $TREE_N x 4 KiB and one $BIG_MIB MiB file, $ROUNDS rounds"
  local r
  for r in $(seq 0 "$ROUNDS"); do  # round 0 warms the page cache and is dropped
    measure hash tree-openssl "$r" sh -c "find '$IN/tree' -type f -print0 | xargs -0 openssl dgst -sha384 -binary"
    measure hash tree-ours "$r" "$SDK" --store "$W/unused" -q publish "$IN/tree" --version 1.0.0 --dry-run
    measure hash tree-ours-1core "$r" taskset -c 0 "$SDK" --store "$W/unused" -q publish "$IN/tree" --version 1.0.0 --dry-run
    measure hash big-openssl "$r" openssl dgst -sha384 -binary "$IN/big/sdk.bin"
    measure hash big-ours "$r" "$SDK" --store "$W/unused" -q publish "$IN/big" --version 1.0.0 --dry-run
  done
}

section_local() {
  log "local: publish $BIG_MIB MiB + $SMALL_N x 4 KiB to a local store, $HEAVY_ROUNDS rounds"
  local r
  # Outputs are deleted at the end of the section only: on this ext4 (no
  # journal) a mass delete slows inode allocation for a minute or more, for
  # whichever command runs next. `sync` before each run: nobody pays for
  # writing back the previous command's dirty pages.
  for r in $(seq 1 "$HEAVY_ROUNDS"); do
    local find_hash="find '$IN/pub' -type f -print0 | xargs -0 openssl dgst -sha384 -binary >/dev/null"
    sync; measure local cp-baseline "$r" sh -c "$find_hash && cp -r '$IN/pub' '$OUT/cp-$r'"
    sync; measure local ours "$r" "$SDK" --store "$OUT/ours-$r" -q publish "$IN/pub" --version 1.0.0 --manifests-dir "$W/m"
    sync; measure local cp-sync-baseline "$r" sh -c "$find_hash && cp -r '$IN/pub' '$OUT/cps-$r' && sync -f '$OUT/cps-$r'"
  done
  rm -rf "${OUT:?}"/*
}

start_s3() {
  rm -f "$W/s3.ctl"; mkfifo "$W/s3.ctl"
  "$W/bin/s3_bench_server" "$@" < "$W/s3.ctl" > "$W/s3.out" 2> "$W/s3.err" &
  S3PID=$!; PIDS+=("$S3PID")
  exec 8> "$W/s3.ctl"
  local i
  for i in $(seq 100); do [ -s "$W/s3.out" ] && break; sleep 0.05; done
  local line; line=$(head -1 "$W/s3.out")
  S3EP=$(sed 's/.*endpoint=\([^ ]*\).*/\1/' <<<"$line")
  S3BUCKET=$(sed 's/.*bucket=\([^ ]*\).*/\1/' <<<"$line")
  S3ROOT=$(sed 's/.*root=\([^ ]*\).*/\1/' <<<"$line")
  [ -n "$S3EP" ] || die "the S3 bench server did not start: $(cat "$W/s3.err")"
}

stop_s3() { exec 8>&-; wait "$S3PID" 2>/dev/null || true; }

s3_requests() {
  local n; n=$(wc -l < "$W/s3.out")
  echo stats >&8
  while [ "$(wc -l < "$W/s3.out")" -le "$n" ]; do sleep 0.02; done
  tail -1 "$W/s3.out" | sed 's/requests=\([0-9]*\).*/\1/'
}
# Sequential round trips since the previous `s3_requests` (the server's stats line).
s3_round_trips() { tail -1 "$W/s3.out" | sed -n 's/.*round_trips=\([0-9]*\).*/\1/p'; }

# Credentials for sdk-cdn and aws; rclone reads its remote `x` from RCLONE_CONFIG_X_*.
s3_env() {
  export AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=$W/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$W/no-aws-credentials
  export RCLONE_CONFIG_X_TYPE=s3 RCLONE_CONFIG_X_PROVIDER=Other RCLONE_CONFIG_X_ENDPOINT=$3
  export RCLONE_CONFIG_X_ACCESS_KEY_ID=$1 RCLONE_CONFIG_X_SECRET_ACCESS_KEY=$2 RCLONE_CONFIG_X_REGION=us-east-1
  export RCLONE_CONFIG_X_FORCE_PATH_STYLE=true RCLONE_CONFIG_X_LIST_VERSION=2 RCLONE_CONFIG=$W/no-rclone.conf
}

# The uploads of one round: our publish (with and without the latest/
# copies, and without them at 8 in flight) and the two baselines, same
# files, same Cache-Control. `count` and `cpu` report the server's request
# count and CPU seconds around each.
s3_round() {
  local section=$1 r=$2 ep=$3 bucket=$4 src=$5 count=$6 cpu=$7 label args
  for label in ours ours-no-promote ours-no-promote-concurrency-8 aws rclone; do
    local before cpu0; before=$($count); cpu0=$($cpu)
    case $label in
      ours) args=("$SDK" --store "s3://$bucket/ours-$r" --endpoint-url "$ep" --path-style -q publish "$src" --version 1.0.0 --manifests-dir "$W/m") ;;
      ours-no-promote) args=("$SDK" --store "s3://$bucket/np-$r" --endpoint-url "$ep" --path-style -q publish "$src" --version 1.0.0 --no-promote --manifests-dir "$W/m") ;;
      ours-no-promote-concurrency-8) args=("$SDK" --store "s3://$bucket/np8-$r" --endpoint-url "$ep" --path-style -q publish "$src" --version 1.0.0 --no-promote --concurrency 8 --manifests-dir "$W/m") ;;
      aws) args=(aws --endpoint-url "$ep" s3 cp --recursive --only-show-errors --cache-control "$IMMUTABLE" "$src" "s3://$bucket/aws-$r/") ;;
      # rclone refuses an AWS_CA_BUNDLE it cannot use with a plain-HTTP endpoint.
      rclone) args=(env -u AWS_CA_BUNDLE rclone copy "$src" "x:$bucket/rclone-$r" --transfers 8 --checkers 8 --header-upload "Cache-Control: $IMMUTABLE") ;;
    esac
    SERVER_CPU="" REQUESTS="" measure "$section" "$label" "$r" "${args[@]}"
    local after cpu1; after=$($count); cpu1=$($cpu)
    # Amend the line just written with the server's side of the run.
    sed -i '$ s/,,,$/,'"$(sub "$cpu1" "$cpu0")"','"$((after - before))"',/' "$RESULTS"
  done
}

section_s3() {
  log "s3: in-process S3 server, $HEAVY_ROUNDS rounds of 4 uploads of $BIG_MIB MiB + $SMALL_N x 4 KiB"
  start_s3
  s3_env sdkcdntestkey sdkcdntestsecret "$S3EP"
  local r
  for r in $(seq 1 "$HEAVY_ROUNDS"); do
    s3_round s3 "$r" "$S3EP" "$S3BUCKET" "$IN/pub" s3_requests "proc_cpu $S3PID"
    # s3s-fs keeps each object's metadata in two files in its root directory.
    rm -rf "${S3ROOT:?}/$S3BUCKET"/*
    find "$S3ROOT" -maxdepth 1 -name '.bucket-*' -delete
  done
  stop_s3
}

section_rtt() {
  log "rtt: $SMALL_N x 4 KiB to the in-process S3 server answering after ${RTT_MS} ms, $HEAVY_ROUNDS rounds"
  start_s3 --latency-ms "$RTT_MS"
  s3_env sdkcdntestkey sdkcdntestsecret "$S3EP"
  local r label args before cpu0
  local s3=(--endpoint-url "$S3EP" --path-style -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m")
  for r in $(seq 1 "$HEAVY_ROUNDS"); do
    for label in ours ours-no-promote ours-concurrency-8 aws aws-with-latest rclone rclone-transfers-64; do
      case $label in
        ours) args=("$SDK" --store "s3://$S3BUCKET/rtt-ours-$r" "${s3[@]}") ;;
        ours-no-promote) args=("$SDK" --store "s3://$S3BUCKET/rtt-np-$r" "${s3[@]}" --no-promote) ;;
        ours-concurrency-8) args=("$SDK" --store "s3://$S3BUCKET/rtt-c8-$r" "${s3[@]}" --no-promote --concurrency 8) ;;
        aws) args=(aws --endpoint-url "$S3EP" s3 cp --recursive --only-show-errors --cache-control "$IMMUTABLE" "$IN/small" "s3://$S3BUCKET/rtt-aws-$r/") ;;
        # The same work as a full publish: the upload, then server-side copies into latest/.
        aws-with-latest) args=(sh -c "aws --endpoint-url '$S3EP' s3 cp --recursive --only-show-errors --cache-control '$IMMUTABLE' '$IN/small' 's3://$S3BUCKET/rtt-awsl-$r/1.0.0/' \
          && aws --endpoint-url '$S3EP' s3 cp --recursive --only-show-errors --metadata-directive REPLACE --cache-control 'public, max-age=300' 's3://$S3BUCKET/rtt-awsl-$r/1.0.0/' 's3://$S3BUCKET/rtt-awsl-$r/latest/'") ;;
        rclone) args=(env -u AWS_CA_BUNDLE rclone copy "$IN/small" "x:$S3BUCKET/rtt-rclone-$r" --transfers 8 --checkers 8 --header-upload "Cache-Control: $IMMUTABLE") ;;
        rclone-transfers-64) args=(env -u AWS_CA_BUNDLE rclone copy "$IN/small" "x:$S3BUCKET/rtt-rclone64-$r" --transfers 64 --checkers 64 --header-upload "Cache-Control: $IMMUTABLE") ;;
      esac
      before=$(s3_requests); cpu0=$(proc_cpu "$S3PID")
      SERVER_CPU="" REQUESTS="" measure rtt "$label" "$r" "${args[@]}"
      sed -i '$ s/,,,$/,'"$(sub "$(proc_cpu "$S3PID")" "$cpu0")"','"$(( $(s3_requests) - before ))"',/' "$RESULTS"
    done
    # `verify` re-reads every object of the version just published (and of latest/).
    for label in verify verify-concurrency-8; do
      args=("$SDK" --store "s3://$S3BUCKET/rtt-ours-$r" --endpoint-url "$S3EP" --path-style -q verify)
      [ "$label" = verify ] || args+=(--concurrency 8)
      before=$(s3_requests)
      REQUESTS="" measure rtt "$label" "$r" "${args[@]}"
      sed -i '$ s/,,,$/,,'"$(( $(s3_requests) - before ))"',/' "$RESULTS"
    done
  done
  stop_s3
}

# The real release (3 files) at --small-rtt-ms: a first publish with
# promotion and index update, a no-op re-publish, and the script a user
# would otherwise write (one `aws s3 cp` per file, a copy into latest/, the
# index), in alternation; sequential round trips counted by the server.
section_small() {
  log "small: a 3-file SDK to the in-process S3 server answering after ${SMALL_RTT_MS} ms, $ROUNDS rounds"
  start_s3 --latency-ms "$SMALL_RTT_MS"
  s3_env sdkcdntestkey sdkcdntestsecret "$S3EP"
  local sdk=$W/small-sdk r label args before
  mkdir -p "$sdk"
  head -c 60000 /dev/urandom | base64 > "$sdk/haloagents.umd.js"
  head -c 6000 /dev/urandom | base64 > "$sdk/haloagents.css"
  head -c 90000 /dev/urandom | base64 > "$sdk/haloagents.umd.js.map"
  echo '{"version":"1.0.0","files":{}}' > "$W/small-index.json"
  local aws=(aws --endpoint-url "$S3EP" --only-show-errors)
  for r in $(seq 1 "$ROUNDS"); do
    for label in first-publish noop-republish shell-script; do
      case $label in
        first-publish|noop-republish) args=("$SDK" --store "s3://$S3BUCKET/small-$r" --endpoint-url "$S3EP" --path-style -q publish "$sdk" --version 1.0.0 --manifests-dir "$W/m") ;;
        shell-script) args=(sh -c "set -e
          for f in haloagents.umd.js haloagents.css haloagents.umd.js.map; do
            ${aws[*]} s3 cp --cache-control '$IMMUTABLE' '$sdk/'\$f 's3://$S3BUCKET/script-$r/sdk/1.0.0/'\$f
          done
          ${aws[*]} s3 cp --recursive --metadata-directive REPLACE --cache-control 'public, max-age=300' 's3://$S3BUCKET/script-$r/sdk/1.0.0/' 's3://$S3BUCKET/script-$r/sdk/latest/'
          ${aws[*]} s3 cp --content-type application/json '$W/small-index.json' 's3://$S3BUCKET/script-$r/api/sdk/sri'") ;;
      esac
      before=$(s3_requests)
      REQUESTS="" measure small "$label" "$r" "${args[@]}"
      sed -i '$ s/,,,$/,,'"$(( $(s3_requests) - before ))"',round_trips='"$(s3_round_trips)"'/' "$RESULTS"
    done
  done
  stop_s3
}

MOTO_PORT=""
start_moto() {
  MOTO_PORT=$(free_port)
  python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" > "$W/moto.log" 2>&1 &
  MOTOPID=$!; PIDS+=("$MOTOPID")
  local i
  for i in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/" 2>/dev/null && break; sleep 0.2; done
  s3_env testing testing "http://127.0.0.1:$MOTO_PORT"
  aws --endpoint-url "http://127.0.0.1:$MOTO_PORT" s3 mb s3://bench >/dev/null
}
stop_moto() { kill "$MOTOPID" 2>/dev/null || true; wait "$MOTOPID" 2>/dev/null || true; }
# moto logs one line per request.
moto_requests() { grep -cE '"(GET|PUT|POST|HEAD|DELETE) ' "$W/moto.log" || true; }

section_moto() {
  log "moto: moto $(python3 -c 'import moto; print(moto.__version__)'), $HEAVY_ROUNDS rounds (a fresh server each)"
  local r
  for r in $(seq 1 "$HEAVY_ROUNDS"); do
    start_moto
    s3_round moto "$r" "http://127.0.0.1:$MOTO_PORT" bench "$IN/pub" moto_requests "proc_cpu $MOTOPID"
    stop_moto
  done
}

section_noop() {
  log "noop: re-publishing a sealed version, counting store requests"
  local set n r before
  start_s3
  s3_env sdkcdntestkey sdkcdntestsecret "$S3EP"
  for set in tiny small; do
    n=$(find "$IN/$set" -type f | wc -l)
    "$SDK" --store "s3://$S3BUCKET/noop-$set" --endpoint-url "$S3EP" --path-style -q publish "$IN/$set" --version 1.0.0 --manifests-dir "$W/m" >/dev/null
    for r in $(seq 1 "$ROUNDS"); do
      before=$(s3_requests)
      measure noop "s3-republish-$n-files" "$r" "$SDK" --store "s3://$S3BUCKET/noop-$set" --endpoint-url "$S3EP" --path-style -q publish "$IN/$set" --version 1.0.0 --manifests-dir "$W/m"
      sed -i '$ s/,,,$/,,'"$(( $(s3_requests) - before ))"',/' "$RESULTS"
    done
  done
  stop_s3
  start_moto
  "$SDK" --store "s3://bench/noop" --endpoint-url "http://127.0.0.1:$MOTO_PORT" --path-style -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m" >/dev/null
  before=$(moto_requests)
  measure noop "moto-republish-$SMALL_N-files" 1 "$SDK" --store "s3://bench/noop" --endpoint-url "http://127.0.0.1:$MOTO_PORT" --path-style -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m"
  sed -i '$ s/,,,$/,,'"$(( $(moto_requests) - before ))"',/' "$RESULTS"
  stop_moto
  "$SDK" --store "$OUT/noop" -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m" >/dev/null
  for r in $(seq 1 "$ROUNDS"); do
    measure noop "local-republish-$SMALL_N-files" "$r" "$SDK" --store "$OUT/noop" -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m"
  done
  rm -rf "$OUT/noop"
}

# versions_dir CHUNKS: where publish_versions keeps the SDK it publishes
# (the last version's files stay there).
versions_dir() { echo "$W/ver-$1"; }

# publish_versions DIR COUNT [CHUNKS]: COUNT versions of the SDK's 3 files
# plus CHUNKS chunk files (default 17: 20 files) published into store DIR.
# 60 versions without chunks (the real SDK) make an index of about 18 KB.
publish_versions() {
  local store=$1 count=$2 chunks=${3:-17} v
  local dir; dir=$(versions_dir "$chunks")
  mkdir -p "$dir/chunks"
  for v in $(seq 1 "$chunks"); do head -c 3000 /dev/urandom | base64 > "$dir/chunks/chunk-$v.js"; done
  echo "body{}" > "$dir/haloagents.css"
  echo '{"version":3}' > "$dir/haloagents.umd.js.map"
  for v in $(seq 0 $((count - 1))); do
    echo "window.HaloAgents={v:'1.$v.0'};" > "$dir/haloagents.umd.js"
    "$SDK" --store "$store" -q publish "$dir" --version "1.$v.0" --manifests-dir "$W/m" >/dev/null
  done
}

# Issue 16 target 4: `serve` against nginx on two indexes, the realistic one
# (60 releases of the 3-file SDK) and a large one (one release of
# $SMALL_N files), nginx and ours alternating round by round.
section_serve() {
  log "serve: /api/sdk/sri against nginx serving the same bytes, wrk ${SERVE_SECS}s x $ROUNDS rounds, two indexes"
  publish_versions "$OUT/serve-sdk" 60 0
  "$SDK" --store "$OUT/serve-large" -q publish "$IN/small" --version 1.0.0 --manifests-dir "$W/m" >/dev/null
  serve_against_nginx sdk "$OUT/serve-sdk"
  serve_against_nginx large "$OUT/serve-large"
}

# serve_against_nginx SHAPE STORE: one index, ours and nginx.
serve_against_nginx() {
  local shape=$1 store=$2
  local ngx=$W/nginx-$shape port_ngx
  port_ngx=$(free_port)
  mkdir -p "$ngx/root/api/sdk" "$ngx/logs"
  cp "$store/api/sdk/sri" "$ngx/root/api/sdk/sri"
  chmod 755 "$W"  # nginx workers run as an unprivileged user
  chmod -R a+rX "$ngx/root"
  cat > "$ngx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port_ngx;
    root $ngx/root;
    location = /api/sdk/sri {
      default_type application/json;
      add_header Cache-Control "public, max-age=60";
      add_header Access-Control-Allow-Origin "*";
    }
  }
}
EOF
  nginx -c "$ngx/nginx.conf" -p "$ngx" & local npid=$!; PIDS+=("$npid")
  "$SDK" --store "$store" serve --addr 127.0.0.1:0 2> "$W/serve-$shape.err" & local spid=$!; PIDS+=("$spid")
  local i
  for i in $(seq 100); do grep -q listening "$W/serve-$shape.err" 2>/dev/null && break; sleep 0.05; done
  local ours_url ngx_url
  ours_url="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$W/serve-$shape.err" | head -1)/api/sdk/sri"
  ngx_url="http://127.0.0.1:$port_ngx/api/sdk/sri"
  for i in $(seq 50); do curl -fsS -o /dev/null "$ngx_url" 2>/dev/null && break; sleep 0.1; done
  cmp <(curl -fsS "$ours_url") <(curl -fsS "$ngx_url") || die "nginx and sdk-cdn serve different bytes"
  local bytes; bytes=$(stat -c %s "$store/api/sdk/sri")
  rss() { awk '/VmRSS/ { print $2 }' "/proc/$spid/status"; }
  # Memory across exactly 10,000 requests on one keep-alive connection.
  local rss0 rss1
  rss0=$(rss)
  python3 - "$ours_url" <<'EOF'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
for _ in range(10_000):
    c.request("GET", u.path)
    r = c.getresponse(); r.read()
    assert r.status == 200
EOF
  rss1=$(rss)
  record serve "rss-before-10k-requests-$shape" 1 "" "$rss0"
  record serve "rss-after-10k-requests-$shape" 1 "" "$rss1"
  local r label url out
  for r in $(seq 1 "$ROUNDS"); do
    for label in nginx ours; do
      if [ "$label" = nginx ]; then url=$ngx_url; else url=$ours_url; fi
      out=$(wrk -t2 -c64 -d"${SERVE_SECS}s" --latency "$url")
      local rps p99
      rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
      p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; print v }' <<<"$out")
      record serve "$label-rps-$shape" "$r" "$rps" "p99_ms=$p99 bytes=$bytes"
    done
  done
  record serve "rss-after-wrk-$shape" 1 "" "$(rss)"
  kill "$spid" "$npid" 2>/dev/null || true
  wait "$spid" "$npid" 2>/dev/null || true
}

section_growth() {
  log "growth: publishing into a store of $GROWTH_V versions x 20 files vs an empty one"
  local store=$OUT/growth dir t0 t1
  dir=$(versions_dir 17)
  t0=$EPOCHREALTIME
  publish_versions "$store" "$GROWTH_V" 17
  t1=$EPOCHREALTIME
  record growth "build-$GROWTH_V-versions" 1 "$(sub "$t1" "$t0")" "index_bytes=$(stat -c %s "$store/api/sdk/sri")"
  local r
  for r in $(seq 1 "$ROUNDS"); do
    echo "window.HaloAgents={v:'9.$r.0'};" > "$dir/haloagents.umd.js"
    sync; measure growth "publish-into-$GROWTH_V-versions" "$r" "$SDK" --store "$store" -q publish "$dir" --version "9.$r.0" --manifests-dir "$W/m"
    sync; measure growth publish-into-empty "$r" "$SDK" --store "$OUT/empty-$r" -q publish "$dir" --version "9.$r.0" --manifests-dir "$W/m"
  done
  record growth index-bytes-after 1 "" "$(stat -c %s "$store/api/sdk/sri")"
  rm -rf "${OUT:?}"/*
}

# A cold release build in a fresh target directory: wall and CPU time
# (the machine may be shared: user CPU is the steadier figure) and the size
# of the binary.
section_build() {
  log "build: cold cargo build --release --timings in a fresh target directory"
  local target=$W/cold-target
  (cd "$ROOT" && CARGO_TARGET_DIR=$target /usr/bin/time -f '%e %U %S %M' -o "$W/build.time" \
    cargo build --release --locked --timings --bin sdk-cdn >/dev/null 2>&1) || die "the cold build failed"
  local wall user sys rss
  read -r wall user sys rss < "$W/build.time"
  record build cold-release 1 "$wall" "user_s=$user sys_s=$sys binary_bytes=$(stat -c %s "$target/release/sdk-cdn")"
  cp "$target"/cargo-timings/cargo-timing.html "$W/cargo-timing.html" 2>/dev/null || true
  rm -rf "$target"
}

section_criterion() {
  log "criterion: cargo bench --bench hashing --bench index_merge"
  local quick=()
  [ "$QUICK" = 1 ] && quick=(env SDK_CDN_BENCH_QUICK=1)
  (cd "$ROOT" && "${quick[@]}" cargo bench --locked --bench hashing --bench index_merge 2>&1) \
    | { grep -E '^(sha384|plan|index_merge)/|time:|thrpt:|index of' | grep -v '%' || true; } | tee "$W/criterion.txt" >&2
}

# --- main --------------------------------------------------------------------

ensure_tools
log "building release binaries"
(cd "$ROOT" && cargo build --release --locked --bin sdk-cdn --example s3_bench_server) >&2
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cp "$TARGET_DIR/release/sdk-cdn" "$TARGET_DIR/release/examples/s3_bench_server" "$W/bin/"
SDK=$W/bin/sdk-cdn

log "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
prepare_inputs
for section in build hash local s3 rtt small moto noop serve growth criterion; do
  want "$section" && "section_$section"
done

python3 - "$RESULTS" "$QUICK" "$TREE_N" "$BIG_MIB" "$SMALL_N" "$GROWTH_V" "$SMALL_RTT_MS" <<'EOF'
import csv, statistics, sys
path, quick, tree_n, big, small, growth_v = sys.argv[1:7]
rows = list(csv.DictReader(open(path)))
def vals(section, label, field="seconds"):
    out = []
    for r in rows:
        if r["section"] == section and r["label"] == label and r["round"] != "0" and r[field] not in ("", None):
            out.append(float(r[field]))
    return out
def med(section, label, field="seconds"):
    v = vals(section, label, field)
    return statistics.median(v) if v else None
def extra(section, label, key):
    v = [float(kv.split("=")[1]) for r in rows if r["section"] == section and r["label"] == label
         for kv in r["extra"].split() if kv.startswith(key + "=")]
    return statistics.median(v) if v else None
def s(x, unit="s"):
    if x is None: return "–"
    return f"{x:.3f} {unit}" if unit == "s" else f"{x:.0f} {unit}"
def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
def line(metric, ours, base, r, target, ok):
    rr = "–" if r is None else f"{r:.2f}×"
    print(f"| {metric} | {ours} | {base} | {rr} | {target} | {'met' if ok else ('MISSED' if ok is not None else '–')} |")

print()
print(f"Medians over the rounds ({'quick run' if quick == '1' else 'full run'}); ratios are speedups (baseline ÷ ours) unless marked.")
print()
print("| metric | ours | baseline | ratio | target | |")
print("| --- | --- | --- | --- | --- | --- |")
t, o = med("hash", "tree-ours"), med("hash", "tree-openssl")
if t:
    r = ratio(o, t); line(f"hash {tree_n} × 4 KiB (`publish --dry-run` vs `find \\| xargs openssl dgst`)", s(t), s(o), r, "≥ 1.5×", r >= 1.5)
    one = med("hash", "tree-ours-1core"); r = ratio(one, t)
    line("hash tree: 2 cores vs 1 core (`taskset -c 0`)", s(t), s(one) + " (1 core)", r, "≥ 1.6×", r >= 1.6)
    b, ob = med("hash", "big-ours"), med("hash", "big-openssl"); r = ratio(b, ob)
    line(f"hash one {big} MiB file (ours ÷ openssl)", s(b), s(ob), r, "≤ 1.35×", r <= 1.35)
l, c, cs = med("local", "ours"), med("local", "cp-baseline"), med("local", "cp-sync-baseline")
if l:
    r = ratio(c, l); line(f"local publish {big} MiB + {small} × 4 KiB vs openssl + `cp -r`", s(l), s(c), r, "≥ 1.0×", r >= 1.0)
    line("… the same, issue 16's second step (≤ 0.80× the baseline's time)", s(l), s(c), r, "≥ 1.25×", r >= 1.25)
    r = ratio(cs, l); line("… vs openssl + `cp -r` + `sync -f` (same durability)", s(l), s(cs), r, "(info)", None)
    rss = max(vals("local", "ours", "max_rss_kb")) / 1024
    line("local publish peak RSS", f"{rss:.1f} MiB", "–", None, "≤ 64 MiB", rss <= 64)
for sec, name in (("s3", "in-process S3 (s3s-fs)"), ("moto", "moto")):
    ours = med(sec, "ours")
    if not ours: continue
    np, aws, rc = med(sec, "ours-no-promote"), med(sec, "aws"), med(sec, "rclone")
    r = ratio(aws, ours); line(f"{name}: publish vs `aws s3 cp --recursive`", s(ours), s(aws), r, "≥ 3×", r >= 3)
    r = ratio(rc, ours); line(f"{name}: publish vs `rclone copy`", s(ours), s(rc), r, "≥ 1×", r >= 1)
    r = ratio(aws, np); line(f"{name}: uploads only (`--no-promote`) vs aws", s(np), s(aws), r, "(info)", None)
    r = ratio(rc, np); line(f"{name}: uploads only (`--no-promote`) vs rclone", s(np), s(rc), r, "(info)", None)
    np8 = med(sec, "ours-no-promote-concurrency-8")
    r = ratio(np8, np); line(f"{name}: uploads only, default 64 in flight vs `--concurrency 8`", s(np), s(np8), r, "(info)", None)
    for label in ("ours", "ours-no-promote", "ours-no-promote-concurrency-8", "aws", "rclone"):
        cpu, srv, req = med(sec, label, "cpu_s"), med(sec, label, "server_cpu_s"), med(sec, label, "requests")
        if cpu is None: continue
        line(f"{name}: {label}: client CPU / server CPU / requests", f"{cpu:.2f} s / {srv:.2f} s / {req:.0f}", "", None, "(info)", None)
ours = med("rtt", "ours")
if ours:
    aws, rc = med("rtt", "aws"), med("rtt", "rclone")
    r = ratio(aws, ours); line(f"{small} × 4 KiB, server answering after a round trip: publish vs aws", s(ours), s(aws), r, "≥ 3×", r >= 3)
    r = ratio(rc, ours); line(f"{small} × 4 KiB, server answering after a round trip: publish vs rclone (8 transfers)", s(ours), s(rc), r, "≥ 1×", r >= 1)
    r = ratio(med("rtt", "aws-with-latest"), ours); line("… publish vs aws doing the same work (upload, then copy to latest/)", s(ours), s(med("rtt", "aws-with-latest")), r, "(info)", None)
    r = ratio(aws, med("rtt", "ours-no-promote")); line("… uploads only (`--no-promote`) vs aws", s(med("rtt", "ours-no-promote")), s(aws), r, "(info)", None)
    r = ratio(med("rtt", "verify-concurrency-8"), med("rtt", "verify")); line("… `verify` of the published version, default 64 in flight vs `--concurrency 8`", s(med("rtt", "verify")), s(med("rtt", "verify-concurrency-8")), r, "(info)", None)
    for label in ("ours", "ours-no-promote", "ours-concurrency-8", "aws", "aws-with-latest", "rclone", "rclone-transfers-64", "verify", "verify-concurrency-8"):
        t, req = med("rtt", label), med("rtt", label, "requests")
        line(f"round trip: {label}: wall / client CPU / requests", f"{s(t)} / {med('rtt', label, 'cpu_s'):.2f} s / {req:.0f}", "", None, "(info)", None)
first = med("small", "first-publish")
if first:
    script, noop = med("small", "shell-script"), med("small", "noop-republish")
    rt_first, rt_noop = extra("small", "first-publish", "round_trips"), extra("small", "noop-republish", "round_trips")
    rt_script = extra("small", "shell-script", "round_trips")
    ms = float(sys.argv[7]) / 1000
    line("3-file SDK: first publish (promote, index): sequential round trips", f"{rt_first:.0f}", "–", None, "≤ 10", rt_first <= 10)
    line("3-file SDK: no-op re-publish: sequential round trips", f"{rt_noop:.0f}", "–", None, "≤ 3", rt_noop <= 3)
    r = ratio(first, rt_first * ms); line("3-file SDK: first publish, wall vs the floor (round trips × latency)", s(first), s(rt_first * ms), None, "(info)", None)
    print(f"| … ours ÷ floor | {first / (rt_first * ms):.2f}× | | | | |")
    r = ratio(script, first); line("3-file SDK: first publish vs the `aws s3 cp` script (per file, latest/, index)", s(first), s(script), r, "≥ 5×", r >= 5)
    line("3-file SDK: no-op re-publish, wall vs the floor", s(noop), s(rt_noop * ms), None, "(info)", None)
# Tables of their own, printed after the main one.
tables = []
if first:
    tables.append(f"Round trips at {sys.argv[7]} ms per request (medians), counted by the server:")
    tables.append("")
    tables.append("| run | sequential round trips | requests | wall | floor (round trips × latency) |")
    tables.append("| --- | --- | --- | --- | --- |")
    for label in ("first-publish", "noop-republish", "shell-script"):
        rt, req = extra("small", label, "round_trips"), med("small", label, "requests")
        tables.append(f"| {label} | {rt:.0f} | {req:.0f} | {s(med('small', label))} | {s(rt * ms)} |")
    tables.append("")
build = [r for r in rows if r["section"] == "build"]
if build:
    kv = dict(x.split("=") for x in build[0]["extra"].split())
    tables.append("| build | wall | user CPU | binary |")
    tables.append("| --- | --- | --- | --- |")
    tables.append(f"| cold `cargo build --release` | {float(build[0]['seconds']):.0f} s | {float(kv['user_s']):.0f} s | {int(kv['binary_bytes']) / 1e6:.1f} MB |")
    tables.append("")
for label in sorted({r["label"] for r in rows if r["section"] == "noop"}):
    req, t = med("noop", label, "requests"), med("noop", label)
    line(f"no-op re-publish: {label}", f"{s(t)}" + (f", {req:.0f} requests" if req is not None else ""), "–", None, "O(1) requests", None)
for shape, what in (("sdk", "60 releases of the 3-file SDK"), ("large", f"one release of {small} files")):
    rps_o, rps_n = med("serve", f"ours-rps-{shape}"), med("serve", f"nginx-rps-{shape}")
    if not rps_o: continue
    r = ratio(rps_o, rps_n)
    line(f"serve /api/sdk/sri, {what} ({extra('serve', f'ours-rps-{shape}', 'bytes'):.0f} bytes), requests/s (ours ÷ nginx)", f"{rps_o:.0f}/s", f"{rps_n:.0f}/s", r, "≥ 1×", r >= 1)
    line("… p99 latency (wrk -t2 -c64)", f"{extra('serve', f'ours-rps-{shape}', 'p99_ms'):.2f} ms", f"{extra('serve', f'nginx-rps-{shape}', 'p99_ms'):.2f} ms", None, "(report)", None)
    rss = {r["label"]: r["extra"] for r in rows if r["section"] == "serve" and r["label"].startswith("rss")}
    line("… RSS before / after 10k requests / after all wrk runs", " / ".join(f"{int(rss.get(k + '-' + shape, 0)) / 1024:.1f} MiB" for k in ("rss-before-10k-requests", "rss-after-10k-requests", "rss-after-wrk")), "–", None, "flat", None)
g, e = med("growth", f"publish-into-{growth_v}-versions"), med("growth", "publish-into-empty")
if g:
    r = ratio(g, e); line(f"publish 20 files into {growth_v} versions vs empty store (ours ÷ empty)", s(g), s(e), r, "≈ 1×", None)
    idx = [r for r in rows if r["section"] == "growth" and r["label"] == "index-bytes-after"]
    if idx: line("index size after", f"{int(idx[0]['extra']) / 1e6:.2f} MB", "–", None, "(report)", None)
if tables:
    print()
    print("\n".join(tables))
EOF
