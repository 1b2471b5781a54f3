#!/usr/bin/env bash
# mkinitramfs.sh OUT SCRATCH [--init FILE] [--tree DIR]...
#
# Builds a small gzip'd newc initramfs at OUT: busybox-static with every applet
# linked into /bin, /init (default: init.sh beside this script), and the
# contents of each --tree DIR copied over the root in order (later trees win).
# Deterministic: sorted entries, owner 0:0, fixed mtimes, no gzip timestamp,
# so the same inputs give the same bytes (and the same PCR 9 / PCR 11).
# SCRATCH is a working directory; the tree is built in SCRATCH/initramfs and
# removed again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: mkinitramfs.sh OUT SCRATCH [--init FILE] [--tree DIR]..."
out=$1 scratch=$2
shift 2
init=$VM_DIR/init.sh
trees=()
while [ $# -gt 0 ]; do
  case $1 in
    --init) init=$2; shift 2 ;;
    --tree) trees+=("$2"); shift 2 ;;
    *) die "mkinitramfs.sh: unknown argument $1" ;;
  esac
done

need_file "$BUSYBOX" busybox-static
need_cmd cpio cpio
need_cmd gzip gzip
[ -f "$init" ] || die "no init script $init"

root=$scratch/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/provenix-vm.d}
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
# busybox-static is statically linked: nothing else is needed to run it.
if ldd "$root/bin/busybox" 2>/dev/null | grep -q '=>'; then
  die "$BUSYBOX is dynamically linked; install busybox-static"
fi
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
install -m 0755 "$init" "$root/init"
for t in "${trees[@]}"; do
  [ -d "$t" ] || die "--tree $t is not a directory"
  cp -a "$t/." "$root/"
done

# Fixed timestamps (2000-01-01) for reproducible bytes.
find "$root" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +
(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
  cpio --quiet -o -H newc --reproducible --owner=0:0) | gzip -9 -n >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$root"
