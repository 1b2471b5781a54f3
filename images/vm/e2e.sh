#!/usr/bin/env bash
# e2e.sh AGENT OUTDIR
#
# The builder's measured boot, end to end, under QEMU/OVMF with an
# EK-certified swtpm (run.sh):
#  1. host: a tiny system closure and one build (`greeting`), made by Nix in
#     a chroot store (OUTDIR/store); the closure is what the UKI's init=
#     names;
#  2. host: an initramfs holding provenix-agent (AGENT, debug info
#     stripped) with the shared libraries it needs, the chroot store as the
#     new root (/sysroot) and a hook (guest-agent.sh);
#  3. guest, from the initrd as on a builder: `measure` the closure into the
#     system PCR before the (simulated) switch-root, `enroll` with the
#     firmware event log, `record` the build (signed, batch-attested), and
#     print the state and log between markers;
#  4. host: the records back into OUTDIR/guest/{state,log}.
# Then OUTDIR also has run.sh's files: uki.efi, uki/, tpm/, ca/, eventlog.bin,
# pcrs.json. agent/tests/vm_e2e.rs does the verifier's side.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || die "usage: e2e.sh AGENT OUTDIR"
agent=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
need_cmd nix-build nix-bin
need_cmd objcopy binutils
"$VM_DIR/run.sh" --check

# 1. The system closure and a build, offline, with busybox as the builder.
store=$out/store
rm -rf "$store" "$out/nix" "$out/tree" "$out/guest"
mkdir -p "$out/nix/bb/bin" "$out/nix/etc" "$store"
cp "$BUSYBOX" "$out/nix/bb/bin/busybox"
printf 'substituters =\nsandbox = false\nbuild-users-group =\n' >"$out/nix/etc/nix.conf"
cat >"$out/nix/sys.nix" <<'NIX'
let
  bb = builtins.path { path = ./bb; name = "busybox-static"; };
  mk = name: script: builtins.derivation {
    inherit name; system = builtins.currentSystem;
    builder = "${bb}/bin/busybox"; args = [ "sh" "-c" script ];
  };
in rec {
  etc = mk "etc" "mkdir -p $out/etc; echo builder > $out/etc/hostname";
  top = mk "nixos-system-builder" "mkdir $out; ln -s ${etc} $out/etc; printf '#!/bin/sh\\n' > $out/init";
  greeting = mk "greeting" "echo hello from a measured builder > $out";
}
NIX
nixb() {
  env -u NIX_REMOTE NIX_CONF_DIR="$out/nix/etc" XDG_CACHE_HOME="$out/nix/xdg" \
    nix-build --store "$store" --no-out-link "$out/nix/sys.nix" "$@"
}
top=$(nixb -A top)
greeting=$(nixb -A greeting)
drv=$(env -u NIX_REMOTE NIX_CONF_DIR="$out/nix/etc" nix-store --store "$store" -q --deriver "$greeting")
printf '%s\n' "$top" >"$out/toplevel"
printf '%s\n' "$drv" >"$out/drv"
printf '%s\n' "$greeting" >"$out/greeting"

# 2. The initramfs tree: the agent and its libraries, the new root, the hook.
tree=$out/tree
mkdir -p "$tree/provenix" "$tree/etc/provenix-vm.d" "$tree/sysroot"
objcopy --strip-debug "$agent" "$tree/provenix/provenix-agent"
tcti=$(ldconfig -p | awk '!found && /libtss2-tcti-device.so.0 /{print $NF; found = 1}')  # no early exit: ldconfig would get SIGPIPE
[ -n "$tcti" ] || die "no libtss2-tcti-device.so.0 (apt-get install libtss2-dev)"
libs() { ldd "$1" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'; }
for lib in $( (libs "$agent"; libs "$tcti"; echo "$tcti") | sort -u); do
  mkdir -p "$tree$(dirname "$lib")"
  cp -L "$lib" "$tree$lib"
done
cp -a "$store/nix" "$tree/sysroot/"
printf '%s\n' "$drv" >"$tree/etc/provenix-drv"
install -m 0755 "$VM_DIR/guest-agent.sh" "$tree/etc/provenix-vm.d/50-provenix-agent"

# 3. Boot; the hook runs after the harness read the event log and PCRs.
"$VM_DIR/run.sh" --tree "$tree" \
  --cmdline "console=ttyS0 panic=-1 loglevel=1 init=$top/init" "$out"

# 4. The guest's records.
mkdir -p "$out/guest"
sed -n '/^=== PROVENIX-AGENT-BEGIN/,/^=== PROVENIX-AGENT-END/p' "$out/serial.log" |
  tr -d '\r' | grep -v '^===' | base64 -d | tar xzf - -C "$out/guest"
grep -q '^=== PROVENIX-AGENT-OK' "$out/serial.log" || {
  sed -n '/PROVENIX-AGENT-ERROR/,$p' "$out/serial.log" | tr -d '\r' | sed -n '1,40p' >&2
  die "the agent failed in the guest"
}
say "guest records in $out/guest: $(ls "$out/guest")"
