#!/usr/bin/env bash
# mkuki.sh OUTDIR KERNEL INITRD CMDLINE [OSREL_FILE]
#
# Builds a unified kernel image OUTDIR/uki.efi from systemd-stub
# (linuxx64.efi.stub, Debian's systemd-boot-efi) with objcopy (binutils):
# Debian 12's systemd (252) has no ukify. The sections, exactly as embedded,
# are kept in OUTDIR/uki/: linux, initrd, cmdline (no trailing newline),
# osrel. A predictor hashes these: systemd-stub measures each section into
# PCR 11 as name + NUL, then its contents, in the order .linux .osrel
# .cmdline .initrd, whatever the order in the file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 4 ] || die "usage: mkuki.sh OUTDIR KERNEL INITRD CMDLINE [OSREL_FILE]"
outdir=$1 kernel=$2 initrd=$3 cmdline=$4 osrel=${5:-}

need_cmd objcopy binutils
need_cmd objdump binutils
need_file "$SD_STUB" systemd-boot-efi
[ -f "$kernel" ] || die "no kernel $kernel"
[ -f "$initrd" ] || die "no initrd $initrd"

sec=$outdir/uki
mkdir -p "$sec"
cp "$kernel" "$sec/linux"
cp "$initrd" "$sec/initrd"
printf '%s' "$cmdline" >"$sec/cmdline"
if [ -n "$osrel" ]; then
  cp "$osrel" "$sec/osrel"
else
  cat >"$sec/osrel" <<'EOF'
ID=provenix-vmtest
NAME="provenix measured-boot test"
PRETTY_NAME="provenix measured-boot test image"
EOF
fi

# Place the new sections after the stub's image, each page-aligned, in the
# order below. VMAs given to objcopy include the image base.
hexval() { objdump -p "$SD_STUB" | awk -v k="$1" '$1 == k { print $2; exit }'; }
base=$((16#$(hexval ImageBase)))
size=$((16#$(hexval SizeOfImage)))
[ "$size" -gt 0 ] || die "cannot read SizeOfImage of $SD_STUB"
align=$((0x1000))
next=$(((size + align - 1) / align * align))
args=()
for name in osrel cmdline linux initrd; do
  file=$sec/$name
  args+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' $((base + next)))")
  len=$(stat -c %s "$file")
  next=$(((next + len + align - 1) / align * align))
done
objcopy "${args[@]}" "$SD_STUB" "$outdir/uki.efi.tmp"

# objcopy stamps the COFF header with the current time, which Authenticode
# (and so PCR 4) covers. Zero it, as in the stub, for reproducible bytes, and
# zero the optional header's CheckSum (0 = none; firmware does not check it,
# Authenticode skips it) rather than leave a checksum of other bytes.
pe=$(od -An -tu4 -j60 -N4 "$outdir/uki.efi.tmp" | tr -d ' ')
printf '\0\0\0\0' | dd of="$outdir/uki.efi.tmp" bs=1 seek=$((pe + 8)) conv=notrunc status=none
printf '\0\0\0\0' | dd of="$outdir/uki.efi.tmp" bs=1 seek=$((pe + 88)) conv=notrunc status=none
mv "$outdir/uki.efi.tmp" "$outdir/uki.efi"
