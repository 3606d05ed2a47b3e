#!/usr/bin/env bash
# Compatibility session: the current aws-cli and boto3 from PyPI (they send the 2025 default
# checksums) against a real `outpost store` on 127.0.0.1:0 with a temp data dir, then aws-cli
# again through an `outpost edge` in front of it.
#
#   OUTPOST_BIN=target/debug/outpost bash tests/compat/run.sh
#
# Installs awscli + boto3 (with awscrt, which botocore needs for CRC32C) into
# $REPO/.venv-compat and builds the binary if OUTPOST_BIN does not exist. Store session: mb, cp
# small and 40 MiB multipart, sync of a nested tree, ls, presign + curl, download and compare,
# rm --recursive, rb, the 40 MiB upload again with AWS_REQUEST_CHECKSUM_CALCULATION=
# when_required, tests/compat/boto3_session.py, boto3_conditionals.py, keys_session.py
# (access keys through `outpost key`, used by aws-cli and boto3), boto3_post_form.py (browser
# form uploads, also through the edge) and aws_cli_policies.py (bucket policies, policy status,
# public access block, ACLs; also through the edge), boto3_cors.py and aws_cli_cors.py
# (CORS rules and preflights, also through the edge) and rclone_s3cmd.sh (rclone and s3cmd: mkdir, copy,
# multipart, ls, cat, delete). Edge session: uploads relayed (single and multipart), downloads
# cached (miss then hit, checked in the edge's metrics), presign, sync, boto3_conditionals.py
# again through the edge; then both metrics pages through prometheus_client's OpenMetrics
# parser. HTTPS session: `outpost up --tls` (its edge runs with an edge key, so requests
# through it use a key of their own, made with `outpost key`), the same uploads and downloads
# against its store and through its edge with the local CA as AWS_CA_BUNDLE (over https the
# clients send aws-chunked bodies with trailing checksums), presign + curl over HTTP/2, the
# boto3 scripts, rclone (--ca-cert) and s3cmd (--ca-certs) over https.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv-compat"
OUTPOST_BIN="${OUTPOST_BIN:-$REPO/target/debug/outpost}"

if [[ ! -x "$OUTPOST_BIN" ]]; then
  echo "== building outpost (no binary at $OUTPOST_BIN)"
  cargo build --bin outpost
  OUTPOST_BIN="$REPO/target/debug/outpost"
fi

echo "== python venv with current awscli + boto3 ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade awscli 'boto3[crt]' prometheus_client requests
AWS="$VENV/bin/aws"
"$AWS" --version

WORK="$(mktemp -d "${TMPDIR:-/tmp}/outpost-compat.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Isolate from any user configuration.
export AWS_ACCESS_KEY_ID="COMPATTESTKEY0000001"
export AWS_SECRET_ACCESS_KEY="compat/test+secret/0123456789abcdefghij"
export AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_REQUEST_CHECKSUM_CALCULATION || true

# start KIND ARGS...: runs `outpost KIND ARGS...`, waits for its "listening on" line, sets URL
# and SERVER_PID; the server's output goes to $WORK/KIND.out / .err.
start() {
  local kind="$1"; shift
  echo "== starting $OUTPOST_BIN $kind"
  OUTPOST_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" OUTPOST_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    "$OUTPOST_BIN" "$kind" --listen 127.0.0.1:0 "$@" >"$WORK/$kind.out" 2>"$WORK/$kind.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  URL=""
  for _ in $(seq 1 300); do
    URL="$(sed -n "s/^outpost $kind listening on \(http[^ ]*\).*$/\1/p" "$WORK/$kind.out" | head -n1)"
    [[ -n "$URL" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "outpost $kind exited early:"; cat "$WORK/$kind.err"; exit 1
    fi
    sleep 0.1
  done
  if [[ -z "$URL" ]]; then
    echo "outpost $kind did not print its listening line within 30 s"; cat "$WORK/$kind.err"; exit 1
  fi
  echo "   $kind at $URL (pid $SERVER_PID)"
}

start store --data "$WORK/data"
STORE_URL="$URL"
STORE_PID="$SERVER_PID"

PASSED=0
FAILED=0
FAILURES=()
# check NAME CMD...: runs CMD, records pass/fail, never aborts the session.
check() {
  local name="$1"; shift
  if ( "$@" ) >"$WORK/last.log" 2>&1; then
    PASSED=$((PASSED + 1)); echo "ok - $name"
  else
    FAILED=$((FAILED + 1)); FAILURES+=("$name"); echo "FAIL - $name"; sed 's/^/    /' "$WORK/last.log" | tail -n 20
  fi
}
aws_s3() { "$AWS" --endpoint-url "$URL" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
same_file() { [[ "$(sha "$1")" == "$(sha "$2")" ]] || { echo "sha256 differs: $1 vs $2"; return 1; }; }

# Test data: a small file, a 40 MiB file (multipart with aws-cli's 8 MiB default chunks), a tree.
B="compat-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
head -c 12345 /dev/urandom >"$WORK/small.txt"
head -c $((40 * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
mkdir -p "$WORK/tree/a/b/c" "$WORK/tree/with space" "$WORK/tree/ünïcödé"
for f in a/1.txt a/b/2.txt a/b/c/3.txt "with space/file name.txt" "ünïcödé/ファイル.txt" top.txt; do
  head -c $((RANDOM + 1)) /dev/urandom >"$WORK/tree/$f"
done
TREE_FILES=6

echo "== aws-cli session against s3://$B"
check "mb" aws_s3 s3 mb "s3://$B"
check "cp small file up" aws_s3 s3 cp "$WORK/small.txt" "s3://$B/small.txt"
check "cp 40 MiB file up (multipart)" aws_s3 s3 cp "$WORK/big.bin" "s3://$B/big.bin"
check "40 MiB object has a multipart ETag (-5)" bash -c '
  etag=$("$0" --endpoint-url "$1" s3api head-object --bucket "$2" --key big.bin --query ETag --output text)
  echo "ETag: $etag"; [[ "$etag" == *-5\" || "$etag" == *-5 ]]' "$AWS" "$URL" "$B"
DIRECT_ETAG="$("$AWS" --endpoint-url "$URL" s3api head-object --bucket "$B" --key big.bin --query ETag --output text || true)"
check "sync nested tree up" aws_s3 s3 sync "$WORK/tree" "s3://$B/tree/"
check "ls --recursive lists every tree file" bash -c '
  n=$("$0" --endpoint-url "$1" s3 ls --recursive "s3://$2/tree/" | wc -l)
  echo "listed $n"; [[ "$n" -eq "$3" ]]' "$AWS" "$URL" "$B" "$TREE_FILES"
check "second sync uploads nothing" bash -c '
  out=$("$0" --endpoint-url "$1" s3 sync "$3" "s3://$2/tree/")
  echo "$out"; [[ -z "$out" ]]' "$AWS" "$URL" "$B" "$WORK/tree"
check "ls shows prefix and objects" bash -c '
  out=$("$0" --endpoint-url "$1" s3 ls "s3://$2/")
  echo "$out"; grep -q "PRE tree/" <<<"$out" && grep -q "small.txt" <<<"$out" && grep -q "big.bin" <<<"$out"' "$AWS" "$URL" "$B"
check "ls of buckets shows the bucket" bash -c '"$0" --endpoint-url "$1" s3 ls | grep -q " $2$"' "$AWS" "$URL" "$B"
check "presign + curl small file" bash -c '
  u=$("$0" --endpoint-url "$1" s3 presign "s3://$2/small.txt" --expires-in 300)
  curl -fsS -o "$3/presigned.txt" "$u" && [[ "$(sha256sum <"$3/presigned.txt")" == "$(sha256sum <"$3/small.txt")" ]]' "$AWS" "$URL" "$B" "$WORK"
check "presign + curl 40 MiB file" bash -c '
  u=$("$0" --endpoint-url "$1" s3 presign "s3://$2/big.bin")
  curl -fsS -o "$3/presigned.bin" "$u" && [[ "$(sha256sum <"$3/presigned.bin")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$URL" "$B" "$WORK"
check "download small and compare sha256" bash -c '"$0" --endpoint-url "$1" s3 cp "s3://$2/small.txt" "$3/small.down" && [[ "$(sha256sum <"$3/small.down")" == "$(sha256sum <"$3/small.txt")" ]]' "$AWS" "$URL" "$B" "$WORK"
check "download 40 MiB and compare sha256" bash -c '"$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.down" && [[ "$(sha256sum <"$3/big.down")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$URL" "$B" "$WORK"
check "sync tree down and diff" bash -c '"$0" --endpoint-url "$1" s3 sync "s3://$2/tree/" "$3/tree-down" && diff -r "$3/tree" "$3/tree-down"' "$AWS" "$URL" "$B" "$WORK"
check "s3api put-object --checksum-algorithm CRC32C + head-object --checksum-mode" bash -c '
  "$0" --endpoint-url "$1" s3api put-object --bucket "$2" --key crc32c.txt --body "$3/small.txt" --checksum-algorithm CRC32C >/dev/null &&
  v=$("$0" --endpoint-url "$1" s3api head-object --bucket "$2" --key crc32c.txt --checksum-mode ENABLED --query ChecksumCRC32C --output text) &&
  echo "ChecksumCRC32C: $v" && [[ -n "$v" && "$v" != "None" ]]' "$AWS" "$URL" "$B" "$WORK"
check "cp between keys (server-side copy)" aws_s3 s3 cp "s3://$B/small.txt" "s3://$B/copy/small.txt"
check "rm --recursive" aws_s3 s3 rm --recursive "s3://$B/"
# --no-paginate: aws-cli's paginator drops KeyCount from the merged result.
check "bucket is empty after rm --recursive" bash -c '
  n=$("$0" --endpoint-url "$1" s3api list-objects-v2 --no-paginate --bucket "$2" --query "KeyCount" --output text); echo "KeyCount $n"; [[ "$n" == "0" ]]' "$AWS" "$URL" "$B"
check "rb" aws_s3 s3 rb "s3://$B"
check "bucket gone after rb" bash -c '! "$0" --endpoint-url "$1" s3api head-bucket --bucket "$2"' "$AWS" "$URL" "$B"

echo "== the 40 MiB upload again with AWS_REQUEST_CHECKSUM_CALCULATION=when_required"
B2="${B}-wr"
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
check "mb (when_required)" aws_s3 s3 mb "s3://$B2"
check "cp 40 MiB up (when_required)" aws_s3 s3 cp "$WORK/big.bin" "s3://$B2/big.bin"
check "download and compare (when_required)" bash -c '"$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.down2" && [[ "$(sha256sum <"$3/big.down2")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$URL" "$B2" "$WORK"
check "rb --force (when_required)" aws_s3 s3 rb --force "s3://$B2"
unset AWS_REQUEST_CHECKSUM_CALCULATION

# python_checks SCRIPT URL [ARG...]: runs tests/compat/SCRIPT with URL (and ARGs) and adds its
# RESULT line.
python_checks() {
  local script="$1" url="$2" log="$WORK/${1%.py}.log" bp bf
  if "$VENV/bin/python" "$REPO/tests/compat/$script" "${@:2}" >"$log" 2>&1; then :; fi
  cat "$log"
  read -r bp bf < <(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$log" | tail -n1; echo)
  if [[ -z "${bp:-}" ]]; then
    FAILED=$((FAILED + 1)); FAILURES+=("$script against $url did not finish")
  else
    PASSED=$((PASSED + bp)); FAILED=$((FAILED + bf))
    if (( bf > 0 )); then FAILURES+=("$script against $url: $bf check(s)"); fi
  fi
}

echo "== boto3 session"
python_checks boto3_session.py "$STORE_URL"
echo "== boto3 conditional reads against the store"
python_checks boto3_conditionals.py "$STORE_URL"
echo "== access keys with aws-cli and boto3 (outpost key ...)"
OUTPOST_BIN="$OUTPOST_BIN" python_checks keys_session.py "$STORE_URL"
echo "== browser form uploads (boto3 generate_presigned_post + requests) against the store"
python_checks boto3_post_form.py "$STORE_URL"
echo "== aws-cli + curl: bucket policies, policy status, public access block, ACLs (store)"
python_checks aws_cli_policies.py "$STORE_URL"
echo "== boto3 CORS rules and preflights (store)"
python_checks boto3_cors.py "$STORE_URL"
echo "== aws-cli + curl: CORS rules and preflights (store)"
python_checks aws_cli_cors.py "$STORE_URL"

source "$REPO/tests/compat/rclone_s3cmd.sh"
echo "== rclone and s3cmd (store)"
rclone_s3cmd_session store "$STORE_URL"

echo "== aws-cli through an edge in front of the store (reads cached, writes relayed)"
start edge --origin "$STORE_URL" --cache-dir "$WORK/edge-cache"
EDGE_PID="$SERVER_PID"
B3="${B}-edge"
check "mb through the edge" aws_s3 s3 mb "s3://$B3"
check "cp small up through the edge" aws_s3 s3 cp "$WORK/small.txt" "s3://$B3/small.txt"
check "cp 40 MiB up through the edge (multipart relayed)" aws_s3 s3 cp "$WORK/big.bin" "s3://$B3/big.bin"
check "multipart through the edge has the ETag of the direct upload" bash -c '
  etag=$("$0" --endpoint-url "$1" s3api head-object --bucket "$2" --key big.bin --query ETag --output text)
  echo "edge: $etag direct: $3"; [[ -n "$3" && "$etag" == "$3" ]]' "$AWS" "$URL" "$B3" "$DIRECT_ETAG"
check "sync tree up through the edge" aws_s3 s3 sync "$WORK/tree" "s3://$B3/tree/"
check "the store holds what went through the edge" bash -c '
  "$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.direct" && [[ "$(sha256sum <"$3/big.direct")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$STORE_URL" "$B3" "$WORK"
for round in miss hit; do
  check "download 40 MiB through the edge ($round)" bash -c '"$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.edge" && [[ "$(sha256sum <"$3/big.edge")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$URL" "$B3" "$WORK"
done
check "the second download was served from the edge cache" bash -c '
  hits=$(curl -fsS "$0/_outpost/metrics" | sed -n "s/^outpost_edge_cache_requests_total{outcome=\"Hit\"} \([0-9.]*\)$/\1/p")
  echo "hits: $hits"; [[ -n "$hits" && "${hits%.*}" -ge 1 ]]' "$URL"
check "presign + curl through the edge" bash -c '
  u=$("$0" --endpoint-url "$1" s3 presign "s3://$2/small.txt" --expires-in 300)
  curl -fsS -o "$3/presigned.edge" "$u" && [[ "$(sha256sum <"$3/presigned.edge")" == "$(sha256sum <"$3/small.txt")" ]]' "$AWS" "$URL" "$B3" "$WORK"
check "sync tree down through the edge and diff" bash -c '"$0" --endpoint-url "$1" s3 sync "s3://$2/tree/" "$3/tree-edge" && diff -r "$3/tree" "$3/tree-edge"' "$AWS" "$URL" "$B3" "$WORK"
check "ls through the edge" bash -c '"$0" --endpoint-url "$1" s3 ls "s3://$2/" | grep -q "big.bin"' "$AWS" "$URL" "$B3"
check "rb --force through the edge" aws_s3 s3 rb --force "s3://$B3"
# The README's invalidation command, taken from README.md as written (so the two cannot drift),
# with only the edge's address put in: it must work with the curl this machine has.
readme_invalidation() {
  local cmd out
  # The ```sh block of README.md that posts to /_outpost/invalidations, lines joined as written.
  cmd=$(awk '/^ *```sh$/ {b = ""; on = 1; next}
             on && /^ *```$/ {on = 0; if (b ~ /_outpost\/invalidations/) print b; next}
             on {b = b $0 "\n"}' "$REPO/README.md")
  [[ -n "$cmd" ]] || { echo "no invalidation command in README.md"; return 1; }
  cmd=${cmd//http:\/\/127.0.0.1:9080/$1}
  echo "$cmd"
  out=$(eval "$cmd") || return 1
  echo "$out"
  [[ "$out" == *'"status":"Completed"'* ]]
}
check "the README's invalidation command works against the edge ($(curl --version | head -n1 | cut -d' ' -f1-2))" readme_invalidation "$URL"
echo "== boto3 conditional reads through the edge (the store's 304/412, cold and warm cache)"
python_checks boto3_conditionals.py "$URL"
echo "== browser form uploads through the edge (checked at the store)"
python_checks boto3_post_form.py "$URL" "$STORE_URL"
echo "== aws-cli + curl: bucket policies, policy status, public access block, ACLs (edge)"
python_checks aws_cli_policies.py "$URL"
echo "== boto3 CORS rules and preflights (edge)"
python_checks boto3_cors.py "$URL"
echo "== aws-cli + curl: CORS rules and preflights (edge)"
python_checks aws_cli_cors.py "$URL"
echo "== rclone and s3cmd (edge)"
rclone_s3cmd_session edge "$URL"
check "both metrics pages parse with prometheus_client's OpenMetrics parser" \
  "$VENV/bin/python" "$REPO/tests/compat/metrics_page.py" "$STORE_URL" "$URL"

echo "== over https: outpost up --tls (store and edge; aws-cli and boto3 stream aws-chunked bodies with trailing checksums here)"
UP_DATA="$WORK/up-tls"
OUTPOST_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" OUTPOST_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$OUTPOST_BIN" up --tls --data "$UP_DATA" --listen 127.0.0.1:0 --edge-listen 127.0.0.1:0 \
  >"$WORK/up.out" 2>"$WORK/up.err" &
UP_PID=$!
PIDS+=("$UP_PID")
TLS_STORE_URL="" TLS_EDGE_URL=""
for _ in $(seq 1 300); do
  TLS_STORE_URL="$(sed -n 's/^outpost store listening on \(https[^ ]*\).*$/\1/p' "$WORK/up.out" | head -n1)"
  TLS_EDGE_URL="$(sed -n 's/^outpost edge listening on \(https[^ ]*\).*$/\1/p' "$WORK/up.out" | head -n1)"
  [[ -n "$TLS_EDGE_URL" ]] && break
  kill -0 "$UP_PID" 2>/dev/null || { echo "outpost up --tls exited early:"; cat "$WORK/up.err"; exit 1; }
  sleep 0.1
done
[[ -n "$TLS_EDGE_URL" ]] || { echo "outpost up --tls did not print its listening lines"; cat "$WORK/up.err"; exit 1; }
echo "   store at $TLS_STORE_URL, edge at $TLS_EDGE_URL (pid $UP_PID)"
# Both clients read the CA from here (aws-cli's --ca-bundle, botocore's verify).
export AWS_CA_BUNDLE="$UP_DATA/tls/ca.pem"
check "up --tls prints how to trust its CA" grep -q -- "--ca-bundle .*$UP_DATA/tls/ca.pem" "$WORK/up.out"
# The edge of `outpost up` runs with an edge key and takes no root key: through it, a key of
# one's own that may create buckets (and owns those it creates).
ROOT_KEY_ID="$AWS_ACCESS_KEY_ID" ROOT_KEY_SECRET="$AWS_SECRET_ACCESS_KEY"
TLS_KEY="$("$OUTPOST_BIN" key create compat-tls --json --endpoint "$TLS_STORE_URL")"
"$OUTPOST_BIN" key allow compat-tls --create-bucket --endpoint "$TLS_STORE_URL" >/dev/null
TLS_KEY_ID="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_key_id"])' <<<"$TLS_KEY")"
TLS_KEY_SECRET="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_access_key"])' <<<"$TLS_KEY")"
as_tls_key() { export AWS_ACCESS_KEY_ID="$TLS_KEY_ID" AWS_SECRET_ACCESS_KEY="$TLS_KEY_SECRET"; }
as_root() { export AWS_ACCESS_KEY_ID="$ROOT_KEY_ID" AWS_SECRET_ACCESS_KEY="$ROOT_KEY_SECRET"; }
for target in store edge; do
  if [[ "$target" == store ]]; then URL="$TLS_STORE_URL"; else URL="$TLS_EDGE_URL"; as_tls_key; fi
  # The edge learns of a new key within a second (it polls the store).
  for _ in $(seq 1 50); do aws_s3 s3 ls >/dev/null 2>&1 && break; sleep 0.1; done
  B4="${B}-tls-$target"
  check "https $target: mb" aws_s3 s3 mb "s3://$B4"
  check "https $target: cp small up" aws_s3 s3 cp "$WORK/small.txt" "s3://$B4/small.txt"
  check "https $target: cp 40 MiB up (multipart)" aws_s3 s3 cp "$WORK/big.bin" "s3://$B4/big.bin"
  check "https $target: sync tree up" aws_s3 s3 sync "$WORK/tree" "s3://$B4/tree/"
  check "https $target: the store holds the exact bytes" bash -c '
    "$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.tls" && [[ "$(sha256sum <"$3/big.tls")" == "$(sha256sum <"$3/big.bin")" ]] &&
    "$0" --endpoint-url "$1" s3 cp "s3://$2/small.txt" "$3/small.tls" && [[ "$(sha256sum <"$3/small.tls")" == "$(sha256sum <"$3/small.txt")" ]]' \
    "$AWS" "$TLS_STORE_URL" "$B4" "$WORK"
  check "https $target: download 40 MiB and compare" bash -c '"$0" --endpoint-url "$1" s3 cp "s3://$2/big.bin" "$3/big.tls2" && [[ "$(sha256sum <"$3/big.tls2")" == "$(sha256sum <"$3/big.bin")" ]]' "$AWS" "$URL" "$B4" "$WORK"
  check "https $target: sync tree down and diff" bash -c '"$0" --endpoint-url "$1" s3 sync "s3://$2/tree/" "$3/tree-tls-$4" && diff -r "$3/tree" "$3/tree-tls-$4"' "$AWS" "$URL" "$B4" "$WORK" "$target"
  check "https $target: presign + curl --cacert over HTTP/2" bash -c '
    u=$("$0" --endpoint-url "$1" s3 presign "s3://$2/small.txt" --expires-in 300)
    v=$(curl -fsS --http2 --cacert "$AWS_CA_BUNDLE" -o "$3/presigned.tls" -w "%{http_version}" "$u") && echo "HTTP/$v" &&
    [[ "$v" == 2 ]] && [[ "$(sha256sum <"$3/presigned.tls")" == "$(sha256sum <"$3/small.txt")" ]]' "$AWS" "$URL" "$B4" "$WORK"
  check "https $target: rb --force" aws_s3 s3 rb --force "s3://$B4"
  as_root
done
echo "== boto3 over https (store, then through the edge)"
python_checks boto3_session.py "$TLS_STORE_URL"
as_tls_key
python_checks boto3_conditionals.py "$TLS_EDGE_URL"
echo "== form uploads through the keyed edge with a key of one's own (SigV4 checked there, SigV2 by the store)"
python_checks boto3_post_form.py "$TLS_EDGE_URL"
as_root
echo "== rclone (--ca-cert) and s3cmd (--ca-certs) over https (store, then through the edge)"
rclone_s3cmd_session "https store" "$TLS_STORE_URL" "$AWS_CA_BUNDLE"
as_tls_key
rclone_s3cmd_session "https edge" "$TLS_EDGE_URL" "$AWS_CA_BUNDLE"
as_root
unset AWS_CA_BUNDLE

for pid in "$STORE_PID" "$EDGE_PID" "$UP_PID"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    FAILED=$((FAILED + 1)); FAILURES+=("a server process (pid $pid) died during the session")
  fi
done

echo
echo "$PASSED passed, $FAILED failed"
if (( FAILED > 0 )); then
  printf '  failed: %s\n' "${FAILURES[@]}"
  for kind in store edge up; do
    echo "-- $kind stderr (tail) --"; tail -n 40 "$WORK/$kind.err" 2>/dev/null || true
  done
  exit 1
fi
