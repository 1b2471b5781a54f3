#!/usr/bin/env bash
# run.sh [OPTIONS] OUTDIR
#
# One measured boot, start to finish: builds an initramfs, a UKI and a GPT
# ESP image, provisions an EK-certified swtpm, boots under QEMU/OVMF (TCG),
# and extracts the firmware event log and the PCRs read in the guest.
# Everything lands in OUTDIR (see README.md); scratch state lives in
# OUTDIR/scratch and is removed on exit.
#
# Options:
#   --kernel FILE   kernel EFI image (default: newest /boot/vmlinuz-*)
#   --cmdline STR   kernel command line for the UKI's .cmdline
#                   (default: console=ttyS0 panic=-1 loglevel=1)
#   --init FILE     the initramfs /init (default: init.sh here)
#   --tree DIR      copied over the initramfs root (repeatable)
#   --banks LIST    active PCR banks (default: sha1,sha256)
#   --check         only check that the host packages are present
# Exit status: 0 on success, 3 when a host package is missing, else 1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=
cmdline="console=ttyS0 panic=-1 loglevel=1"
banks=sha1,sha256
initramfs_args=()
check_only=0
outdir=
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --cmdline) cmdline=$2; shift 2 ;;
    --init) initramfs_args+=(--init "$2"); shift 2 ;;
    --tree) initramfs_args+=(--tree "$2"); shift 2 ;;
    --banks) banks=$2; shift 2 ;;
    --check) check_only=1; shift ;;
    -*) die "run.sh: unknown option $1" ;;
    *) [ -z "$outdir" ] || die "run.sh: one OUTDIR only"; outdir=$1; shift ;;
  esac
done

# Every host package the harness needs, checked before any work.
need_cmd qemu-system-x86_64 qemu-system-x86
need_file "$OVMF_CODE" ovmf
need_file "$OVMF_VARS" ovmf
need_file "$SD_STUB" systemd-boot-efi
need_file "$BUSYBOX" busybox-static
need_cmd cpio cpio
need_cmd objcopy binutils
need_cmd sfdisk fdisk
need_cmd mkfs.vfat dosfstools
need_cmd mcopy mtools
need_cmd swtpm swtpm
need_cmd swtpm_setup swtpm-tools
need_cmd certtool gnutls-bin
need_cmd setpriv util-linux
[ -n "$kernel" ] || kernel=$(newest_kernel)
[ -n "$kernel" ] || {
  printf 'vm: missing Debian package linux-image-amd64 (no /boot/vmlinuz-*); apt-get install linux-image-amd64\n' >&2
  exit "$VM_EXIT_MISSING"
}
[ -r "$kernel" ] || die "cannot read kernel $kernel"
[ "$check_only" = 0 ] || exit 0

[ -n "$outdir" ] || die "usage: run.sh [OPTIONS] OUTDIR"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
scratch=$outdir/scratch
rm -rf "$scratch"
mkdir -p "$scratch"
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT
export TMPDIR=$scratch

t_start=$(now_s)
say "initramfs, UKI ($(basename "$kernel"), objcopy + systemd-stub), ESP image"
"$VM_DIR/mkinitramfs.sh" "$scratch/initrd.cpio.gz" "$scratch" "${initramfs_args[@]}"
"$VM_DIR/mkuki.sh" "$outdir" "$kernel" "$scratch/initrd.cpio.gz" "$cmdline"
"$VM_DIR/mkesp.sh" "$outdir/esp.img" "$outdir/uki.efi"
t_built=$(now_s)

say "provisioning swtpm (EK certificates from a local CA, banks $banks)"
rm -rf "$outdir/tpm" "$outdir/ca" "$outdir/ek-certs"
"$VM_DIR/tpm-provision.sh" "$outdir/tpm" "$outdir/ca" "$banks"
t_prov=$(now_s)

say "booting (QEMU TCG, OVMF, swtpm)"
# boot.sh ties QEMU and swtpm to itself; setpriv ties boot.sh to us.
boot=$(setpriv --pdeathsig KILL -- "$VM_DIR/boot.sh" "$outdir/esp.img" "$outdir/tpm" "$outdir/serial.log" "$scratch/boot")
"$VM_DIR/extract.sh" "$outdir/serial.log" "$outdir"
t_end=$(now_s)

{
  echo "kernel=$kernel"
  echo "cmdline=$cmdline"
  echo "banks=$banks"
  echo "build_seconds=$(elapsed "$t_start" "$t_built")"
  echo "provision_seconds=$(elapsed "$t_built" "$t_prov")"
  echo "$boot"
  echo "total_seconds=$(elapsed "$t_start" "$t_end")"
} >"$outdir/run.txt"
say "done in $(elapsed "$t_start" "$t_end") s ($boot; QEMU wall time); results in $outdir"
cat "$outdir/run.txt"
