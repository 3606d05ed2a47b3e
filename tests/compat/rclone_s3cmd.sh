# rclone and s3cmd (Debian's packages) against one endpoint: mkdir, copy up (small, and 12 MiB
# as a multipart upload), ls, cat/get and compare the bytes, delete, rmdir. Sourced by run.sh,
# which defines `check`, $WORK ($WORK/small.txt) and the credentials.
#
#   rclone_s3cmd_session LABEL URL [CA_FILE]     (CA_FILE for an https:// URL)

rclone_s3cmd_session() {
  local label="$1" url="$2" ca="${3:-}"
  local bucket="rs-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local medium="$WORK/medium.bin"
  [[ -f "$medium" ]] || head -c $((12 * 1024 * 1024 + 7)) /dev/urandom >"$medium"

  # rclone: a remote named by environment variables, nothing read from ~/.config. Its AWS SDK
  # fails on AWS_CA_BUNDLE ("unsupported transport"): the CA is given by --ca-cert alone.
  local rclone=(env -u AWS_CA_BUNDLE RCLONE_CONFIG="$WORK/rclone.conf"
    RCLONE_CONFIG_OUTPOST_TYPE=s3 RCLONE_CONFIG_OUTPOST_PROVIDER=Other
    RCLONE_CONFIG_OUTPOST_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
    RCLONE_CONFIG_OUTPOST_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
    RCLONE_CONFIG_OUTPOST_ENDPOINT="$url" RCLONE_CONFIG_OUTPOST_REGION=us-east-1
    rclone --retries 1 --low-level-retries 1 --s3-upload-cutoff 5M --s3-chunk-size 5M)
  [[ -n "$ca" ]] && rclone+=(--ca-cert "$ca")
  local r="outpost:$bucket-rclone"
  check "$label rclone: mkdir" "${rclone[@]}" mkdir "$r"
  check "$label rclone: copyto small and 12 MiB (multipart)" bash -c '"${@:3}" copyto "$1" "'"$r"'/dir/small.txt" && "${@:3}" copyto "$2" "'"$r"'/dir/medium.bin"' \
    _ "$WORK/small.txt" "$medium" "${rclone[@]}"
  check "$label rclone: ls lists both" bash -c 'out=$("${@:2}" ls "$1/dir/") && echo "$out" &&
    grep -q " small.txt$" <<<"$out" && grep -q " medium.bin$" <<<"$out"' _ "$r" "${rclone[@]}"
  check "$label rclone: cat gives the bytes back" bash -c '"${@:5}" cat "$1/dir/medium.bin" >"$2/rclone.cat" &&
    cmp "$2/rclone.cat" "$3" && [[ "$("${@:5}" cat "$1/dir/small.txt" | sha256sum)" == "$(sha256sum <"$4")" ]]' \
    _ "$r" "$WORK" "$medium" "$WORK/small.txt" "${rclone[@]}"
  check "$label rclone: delete, then rmdir" bash -c '"${@:2}" delete "$1" && "${@:2}" rmdir "$1" &&
    ! "${@:2}" lsd outpost: | grep -q " ${1#outpost:}$"' _ "$r" "${rclone[@]}"

  # s3cmd: a config file of its own, path-style addressing (no %(bucket)s in host_bucket).
  local host="${url#*://}" https=False
  [[ "$url" == https://* ]] && https=True
  local cfg="$WORK/s3cmd-$label.cfg"
  cat >"$cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $host
host_bucket = $host
bucket_location = us-east-1
use_https = $https
check_ssl_certificate = True
signature_v2 = False
CFG
  local s3cmd=(s3cmd -c "$cfg" --no-progress --multipart-chunk-size-mb=5)
  [[ -n "$ca" ]] && s3cmd+=(--ca-certs="$ca")
  local s="s3://$bucket-s3cmd"
  check "$label s3cmd: mb" "${s3cmd[@]}" mb "$s"
  check "$label s3cmd: put small and 12 MiB (multipart)" bash -c '"${@:4}" put "$2" "$1/dir/small.txt" && "${@:4}" put "$3" "$1/dir/medium.bin"' \
    _ "$s" "$WORK/small.txt" "$medium" "${s3cmd[@]}"
  check "$label s3cmd: ls lists both" bash -c 'out=$("${@:2}" ls "$1/dir/") && echo "$out" &&
    grep -q "dir/small.txt$" <<<"$out" && grep -q "dir/medium.bin$" <<<"$out"' _ "$s" "${s3cmd[@]}"
  check "$label s3cmd: get gives the bytes back" bash -c 'rm -f "$2/s3cmd.get" && "${@:5}" get "$1/dir/medium.bin" "$2/s3cmd.get" &&
    cmp "$2/s3cmd.get" "$3" && "${@:5}" get "$1/dir/small.txt" - >"$2/s3cmd.cat" && cmp "$2/s3cmd.cat" "$4"' \
    _ "$s" "$WORK" "$medium" "$WORK/small.txt" "${s3cmd[@]}"
  check "$label s3cmd: del, then rb" bash -c '"${@:2}" del --recursive --force "$1" && "${@:2}" rb "$1" &&
    ! "${@:2}" ls | grep -q "$1$"' _ "$s" "${s3cmd[@]}"
}
