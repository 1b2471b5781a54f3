#!/usr/bin/env bash
# provenix demo: what exists today, end to end, on a fresh Debian machine as root.
#  1. build a small derivation with real Nix (offline, private chroot store)
#  2. NAR-hash its output from content: provenix == nix-hash == Nix's database
#  3. check the .drv: hashDerivationModulo, output paths recomputed
#  4. create and sign a provenance entry for the build, store it as log leaves
#  5. verify it with `provenix entry show`; a tampered copy is refused
#  6. the TPM side on an swtpm (an EK-certified software TPM, the demo's
#     default TPM): enroll, derive SK inside the TPM, reboot into the same
#     measurements (same SK), reboot into another system (SK refused), then
#     an approved upgrade: rebind a new SK to that system
# Signing entries with the TPM-derived SK comes with the agent's daemon; step
# 4 signs with a software key and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "packages and build"
need=()
for p in nix-bin busybox-static build-essential pkg-config libtss2-dev swtpm swtpm-tools; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
  [ "$(id -u)" -eq 0 ] || { echo "run as root to install ${need[*]}" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.89 with rustup" >&2; exit 2; }
cargo build --release --locked -q -p provenix-verifier
cargo build --release --locked -q -p provenix-protocol --example record_build
cargo build --release --locked -q -p provenix-agent
AGENT=$REPO/target/release/provenix-agent
PROVENIX=$REPO/target/release/provenix
RECORD=$REPO/target/release/examples/record_build

W=$(mktemp -d /tmp/provenix-demo.XXXXXX)
SWTPM_PID=
cleanup() { [ -n "$SWTPM_PID" ] && kill "$SWTPM_PID" 2>/dev/null; chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/etc" "$W/xdg" "$W/bb/bin"
cat > "$W/etc/nix.conf" <<CONF
experimental-features = nix-command
substituters =
sandbox = false
build-users-group =
CONF
cp "$(command -v busybox)" "$W/bb/bin/busybox"
cat > "$W/demo.nix" <<'NIX'
let
  bb = builtins.path { path = ./bb; name = "busybox-static"; };
  mk = name: script: extra: builtins.derivation ({
    inherit name; system = builtins.currentSystem;
    builder = "${bb}/bin/busybox"; args = [ "sh" "-c" script ];
  } // extra);
in rec {
  greeting = mk "greeting" "echo hello from a builder > $out" {};
  tool = mk "tool" ''
    mkdir -p $out/bin $doc
    printf '#!/bin/sh\ncat ${greeting}\n' > $out/bin/greet
    chmod +x $out/bin/greet
    echo "docs" > $doc/README
  '' { outputs = [ "out" "doc" ]; };
}
NIX
export NIX_CONF_DIR=$W/etc XDG_CACHE_HOME=$W/xdg
unset NIX_REMOTE NIX_CONFIG || true
ROOT=$W/store
nixs() { "$@" --store "$ROOT"; }

say "1. build with real Nix into the chroot store $ROOT"
OUT=$(nix-build --store "$ROOT" --no-out-link "$W/demo.nix" -A tool 2>"$W/build.log" | head -n1)
DRV=$(nix-instantiate --store "$ROOT" "$W/demo.nix" -A tool 2>/dev/null)
echo "derivation: $DRV"
echo "output:     $OUT"

say "2. NAR hash from content"
ours=$("$PROVENIX" nar-hash "$ROOT$OUT")
theirs="sha256:$(nix-hash --type sha256 --base32 "$ROOT$OUT")"
db=$(nix-store --store "$ROOT" --query --hash "$OUT")
printf '  provenix nar-hash : %s\n  nix-hash          : %s\n  Nix database      : %s\n' "$ours" "$theirs" "$db"
[ "$ours" = "$theirs" ] && [ "$ours" = "$db" ] || { echo "MISMATCH" >&2; exit 1; }
"$PROVENIX" nar-hash --json "$ROOT$OUT" "$ROOT$(dirname "$OUT")/"*-greeting

say "3 + 4. check the .drv, hash outputs and inputs, sign an entry (software key: demo only)"
args=()
for o in $(nix-store --store "$ROOT" --query --outputs "$DRV"); do
  name=out; case "$o" in *-tool-*) name=${o##*-tool-} ;; esac
  for r in $(nix-store --store "$ROOT" --query --references "$o"); do args+=(--ref "$name=$r"); done
done
"$RECORD" --store-root "$ROOT" --drv "$DRV" --key-seed "$W/sk.seed" --out "$W/entry.bundle" "${args[@]}" | tee "$W/record.out"
SKPUB=$(awk '/SK public key/ {print $4}' "$W/record.out")

say "5. verify it"
"$PROVENIX" entry show --sk-public "$SKPUB" "$W/entry.bundle"
echo
"$PROVENIX" entry show --json --sk-public "$SKPUB" "$W/entry.bundle" | head -c 400; echo " …"

say "5b. a tampered copy (one byte of the doc output's NAR hash changed) is refused"
python3 - "$W/entry.bundle" "$W/tampered.bundle" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
mark = b"-tool-doc"           # the doc output's store path; its NAR hash follows
i = data.find(mark) + len(mark)
data[i] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
set +e
"$PROVENIX" entry show --sk-public "$SKPUB" "$W/tampered.bundle"
rc=$?
set -e
echo "exit code: $rc (1 = verification failed)"
[ "$rc" -eq 1 ] || { echo "tampering was not detected" >&2; exit 1; }

say "6. the TPM side, on an EK-certified swtpm (insecure: demo only)"
T=$W/tpm; mkdir -p "$T/state" "$T/ca"
printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' "$T/ca" "$T/ca" "$T/ca" "$T/ca" > "$T/ca/localca.conf"
printf -- '--platform-manufacturer provenix-demo\n--platform-version 2.1\n--platform-model swtpm\n' > "$T/ca/localca.options"
printf 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s/localca.conf\ncreate_certs_tool_options = %s/localca.options\nactive_pcr_banks = sha256\n' "$T/ca" "$T/ca" > "$T/ca/swtpm_setup.conf"
swtpm_setup --tpm2 --tpmstate "$T/state" --create-ek-cert --create-platform-cert --config "$T/ca/swtpm_setup.conf" --overwrite --logfile "$T/setup.log" >/dev/null
PORT=$(python3 -c 'import socket
for _ in range(50):
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; t=socket.socket()
    try:
        t.bind(("127.0.0.1",p+1)); print(p); break
    except OSError: pass
    finally: s.close(); t.close()')
boot_swtpm() {  # a power cycle: PCRs reset, NV and keys kept
  [ -n "$SWTPM_PID" ] && { kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true; }
  setpriv --pdeathsig KILL -- swtpm socket --tpm2 --server "type=tcp,port=$PORT,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((PORT+1)),bindaddr=127.0.0.1" --tpmstate "dir=$T/state" \
    --flags not-need-init,startup-clear & SWTPM_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$((PORT+1))") 2>/dev/null && break; sleep 0.05; done
}
measured_boot() {  # what firmware, the UKI and the initrd would extend
  for m in "0 firmware" "4 uki" "9 initrd" "14 $1"; do
    set -- $m; "$AGENT" --insecure-allow-swtpm debug-extend --pcr "$1" "$2"
  done
}
export PROVENIX_TCTI="swtpm:host=127.0.0.1,port=$PORT" TSS2_LOG=all+none
boot_swtpm
echo "without --insecure-allow-swtpm the agent refuses a software TPM:"
"$AGENT" info 2>&1 | sed 's/^/  /' || true
"$AGENT" --insecure-allow-swtpm info
measured_boot "system-A"
"$AGENT" --insecure-allow-swtpm enroll --state-dir "$W/agent-state" --no-event-log
SK1=$("$AGENT" --insecure-allow-swtpm keys --json --state-dir "$W/agent-state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sk"])')
echo "reboot into the same measurements:"
boot_swtpm; measured_boot "system-A"
SK2=$("$AGENT" --insecure-allow-swtpm keys --json --state-dir "$W/agent-state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sk"])')
echo "  SK before reboot $SK1"
echo "  SK after reboot  $SK2"
[ "$SK1" = "$SK2" ] || { echo "SK changed across a reboot into the same state" >&2; exit 1; }
echo "reboot into a different system (PCR 14 differs): SK cannot be derived"
boot_swtpm; measured_boot "system-B"
set +e
"$AGENT" --insecure-allow-swtpm keys --state-dir "$W/agent-state" 2>&1 | sed 's/^/  /'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 1 ] || { echo "SK was derivable in another boot state" >&2; exit 1; }
echo "an approved upgrade: rebind a new SK to system B (same AK, same LK)"
"$AGENT" --insecure-allow-swtpm enroll --rebind --state-dir "$W/agent-state" --no-event-log | sed 's/^/  /'
SK3=$("$AGENT" --insecure-allow-swtpm keys --json --state-dir "$W/agent-state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sk"])')
echo "  SK in system B   $SK3"
[ "$SK3" != "$SK1" ] || { echo "rebinding kept the old SK" >&2; exit 1; }

say "done: the build was recorded, signed and verified; tampering was caught; SK lives only in the enrolled boot state"
