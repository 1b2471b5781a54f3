#!/usr/bin/env bash
# boot.sh ESP_IMG TPMSTATE SERIAL_LOG SCRATCH
#
# Boots ESP_IMG (read-only) under QEMU with software emulation (TCG: KVM
# hangs on these machines), OVMF and an swtpm TPM 2.0 whose state is
# TPMSTATE (kept: a later boot can reuse it), until the guest powers off.
# The serial console goes to SERIAL_LOG. Prints "boot_seconds=N.N" (QEMU's
# wall time) on stdout. OVMF copies, the swtpm socket and logs live in
# SCRATCH. Environment: VM_TIMEOUT (seconds, default 300), VM_MEM (default
# 512M), VM_QEMU_EXTRA (more QEMU arguments, word-split).
# QEMU and swtpm die with this script (setpriv --pdeathsig) and QEMU runs
# inside timeout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 4 ] || die "usage: boot.sh ESP_IMG TPMSTATE SERIAL_LOG SCRATCH"
esp=$1 state=$2 serial=$3 scratch=$4
timeout_s=${VM_TIMEOUT:-300}
mem=${VM_MEM:-512M}

need_cmd qemu-system-x86_64 qemu-system-x86
need_file "$OVMF_CODE" ovmf
need_file "$OVMF_VARS" ovmf
need_cmd swtpm swtpm
need_cmd setpriv util-linux
need_cmd timeout coreutils
[ -f "$esp" ] || die "no disk image $esp"
[ -d "$state" ] || die "no TPM state directory $state"

mkdir -p "$scratch"
cp "$OVMF_CODE" "$scratch/OVMF_CODE.fd"
cp "$OVMF_VARS" "$scratch/OVMF_VARS.fd"
sock=$scratch/swtpm.sock

SWTPM_PID=
trap stop_swtpm EXIT
start_swtpm "$state" "$sock" "$scratch/swtpm.pid" "$scratch/swtpm.log"

# Commas are QEMU syntax; VM_QEMU_EXTRA is split into words on purpose.
# shellcheck disable=SC2054,SC2206
qemu_args=(
  -nodefaults -machine q35 -accel tcg -smp 1 -m "$mem"
  -display none -no-reboot -monitor none
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$scratch/OVMF_CODE.fd"
  -drive "if=pflash,format=raw,unit=1,file=$scratch/OVMF_VARS.fd"
  -chardev "socket,id=chrtpm,path=$sock"
  -tpmdev emulator,id=tpm0,chardev=chrtpm
  -device tpm-tis,tpmdev=tpm0
  -drive "if=none,id=esp,format=raw,readonly=on,file=$esp"
  -device virtio-blk-pci,drive=esp,bootindex=0
  -serial "file:$serial"
  ${VM_QEMU_EXTRA:-}
)

t0=$(now_s)
rc=0
setpriv --pdeathsig KILL -- timeout --kill-after=10 "$timeout_s" \
  setpriv --pdeathsig KILL -- qemu-system-x86_64 "${qemu_args[@]}" \
  </dev/null >"$scratch/qemu.out" 2>&1 || rc=$?
t1=$(now_s)

# QEMU closes the TPM connection on exit and swtpm (--terminate) follows.
for _ in $(seq 50); do
  kill -0 "$SWTPM_PID" 2>/dev/null || break
  sleep 0.1
done
stop_swtpm

if [ "$rc" -ne 0 ]; then
  cat "$scratch/qemu.out" >&2 || true
  say "last lines of the serial console:"
  tr -d '\r' <"$serial" | tail -n 30 >&2 || true
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    die "QEMU did not power off within ${timeout_s}s (timeout)"
  fi
  die "QEMU exited with status $rc"
fi
echo "boot_seconds=$(elapsed "$t0" "$t1")"
