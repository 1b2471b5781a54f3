# Shared helpers for the measured-boot VM harness. Sourced, not run.
# shellcheck shell=bash

# The directory of the harness, for the scripts that source this file.
# shellcheck disable=SC2034
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
  printf 'vm: %s\n' "$*" >&2
  exit 1
}

say() { printf 'vm: %s\n' "$*" >&2; }

# Exit code for "a host package is missing", distinct from a failed boot.
VM_EXIT_MISSING=3

# need_cmd COMMAND PACKAGE: fail, naming the Debian package, if COMMAND is absent.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  printf 'vm: missing Debian package %s (command %s not found); apt-get install %s\n' \
    "$2" "$1" "$2" >&2
  exit "$VM_EXIT_MISSING"
}

# need_file PATH PACKAGE: same for a file a package ships.
need_file() {
  [ -e "$1" ] && return 0
  printf 'vm: missing Debian package %s (%s not found); apt-get install %s\n' \
    "$2" "$1" "$2" >&2
  exit "$VM_EXIT_MISSING"
}

# Where Debian's packages put what the harness uses (overridable).
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
SD_STUB=${SD_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
BUSYBOX=${BUSYBOX:-/bin/busybox}

# newest_kernel: the newest /boot/vmlinuz-* (linux-image-amd64), or empty.
newest_kernel() {
  local k
  k=$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n 1)
  printf '%s' "$k"
}

# subst_template IN OUT KEY=VALUE...: replace @KEY@ by VALUE in IN, write OUT.
subst_template() {
  local in=$1 out=$2 text kv
  shift 2
  text=$(<"$in")
  for kv in "$@"; do
    text=${text//@${kv%%=*}@/${kv#*=}}
  done
  case $text in *@[A-Z_]*@*) die "$in: unsubstituted placeholder left in $out" ;; esac
  printf '%s\n' "$text" >"$out"
}

# now_s: seconds since the epoch with nanoseconds, for timings.
now_s() { date +%s.%N; }

# elapsed T0 T1: T1 - T0 in seconds, one decimal.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# start_swtpm STATEDIR SOCKET PIDFILE LOGFILE: starts swtpm in the background,
# tied to this shell (it gets SIGKILL when this shell dies), and waits for its
# control socket. Sets SWTPM_PID. The caller waits for or kills it.
start_swtpm() {
  local state=$1 sock=$2 pidfile=$3 log=$4
  [ ${#sock} -lt 100 ] || die "socket path too long for a unix socket: $sock"
  rm -f "$sock"
  setpriv --pdeathsig KILL -- swtpm socket --tpm2 \
    --tpmstate "dir=$state" \
    --ctrl "type=unixio,path=$sock" \
    --pid "file=$pidfile" \
    --log "file=$log,level=1" \
    --terminate &
  SWTPM_PID=$!
  for _ in $(seq 100); do
    [ -S "$sock" ] && return 0
    kill -0 "$SWTPM_PID" 2>/dev/null || die "swtpm exited at start (see $log)"
    sleep 0.05
  done
  die "swtpm did not create $sock"
}

# stop_swtpm: ends the swtpm started by start_swtpm, if still running.
stop_swtpm() {
  [ -n "${SWTPM_PID:-}" ] || return 0
  kill "$SWTPM_PID" 2>/dev/null || true
  wait "$SWTPM_PID" 2>/dev/null || true
  SWTPM_PID=
}
