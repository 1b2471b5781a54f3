#!/usr/bin/env bash
# provenix demo, the main job end to end, on a fresh Debian machine as root:
#  1. an EK-certified swtpm as the builder's TPM (the embedded default when
#     there is no hardware TPM; insecure, demo only)
#  2. a private Nix daemon (sandboxed builds, chroot store) whose
#     post-build-hook is `provenix-agent hook`
#  3. boot measurement of a system closure into the system PCR, enrollment
#  4. the agent daemon, serving its log on loopback
#  5. real Nix builds through the hook: each recorded as a signed entry,
#     attested by a TPM quote in a batch, appended to the transparency log
#  6. the log: status, checkpoint, look-up by store path, compared with Nix
#  7. `provenix verify` appraises the whole log (key bindings, AK quotes,
#     counters, chain, SK and LK signatures, event-log replay);
#     `provenix entry show` shows the entries from the log's bundle; a
#     tampered copy is refused; the auditor activates the builder's AK
#     (credential activation through the TPM) and `provenix decide` trusts
#     an output under a policy
#  8. `sign-cache`: plain Nix substitutes the outputs from a binary cache
#     trusting only the builder's log key
#  9. a clean stop (SIGTERM); a reboot into the same system keeps SK, a
#     reboot into another system cannot derive it
# 10. re-bound to that other system, the log still verifies, but the
#     auditor's policy (approved systems from `provenix predict`) refuses it
# Everything it starts is stopped, and its files are removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. scripts/lib/swtpm.sh
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }

say "packages and build"
need=()
for p in nix-bin busybox-static build-essential pkg-config libtss2-dev swtpm swtpm-tools python3 curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  [ "$(id -u)" -eq 0 ] || { echo "run as root to install ${need[*]}" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
getent group nixbld >/dev/null || groupadd -r nixbld
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.89 with rustup" >&2; exit 2; }
cargo build --release --locked -q -p provenix-agent -p provenix-verifier
AGENT=$REPO/target/release/provenix-agent
PROVENIX=$REPO/target/release/provenix

W=$(mktemp -d /tmp/provenix-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  chmod -R u+w "$W" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
unset NIX_REMOTE NIX_CONFIG || true
export PROVENIX_CONFIG=/dev/null TSS2_LOG=all+none

say "1. the builder's TPM: an swtpm with an EK certificate from a local CA"
T=$W/tpm; provision_swtpm "$T"
PORT=$(free_port_pair)
SWTPM_PID=
boot_swtpm() {  # a power cycle: PCRs reset, NV and keys kept
  if [ -n "$SWTPM_PID" ]; then kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true; fi
  start_swtpm "$T/state" "$PORT"
  PIDS+=("$SWTPM_PID")
}
export PROVENIX_TCTI="swtpm:host=127.0.0.1,port=$PORT" PROVENIX_INSECURE_ALLOW_SWTPM=true
export PROVENIX_STATE_DIR=$W/agent/state PROVENIX_LOG_DIR=$W/agent/log
export PROVENIX_SOCKET=$W/agent/agent.sock PROVENIX_SPOOL_DIR=$W/agent/spool
boot_swtpm
"$AGENT" info

say "2. a private Nix daemon: sandboxed builds, post-build-hook = provenix-agent hook"
ROOT=$W/nix/root; NIXSTATE=$W/nix/state
export PROVENIX_STORE_ROOT=$ROOT
mkdir -p "$W/nix/etc" "$W/nix/xdg" "$W/nix/bbdir/bin" "$ROOT" "$NIXSTATE"
cp "$(command -v busybox)" "$W/nix/bbdir/bin/busybox"
cat > "$W/nix/hook.sh" <<HOOK
#!/bin/sh
exec $AGENT --config /dev/null hook --socket $PROVENIX_SOCKET --spool-dir $PROVENIX_SPOOL_DIR
HOOK
chmod +x "$W/nix/hook.sh"
cat > "$W/nix/etc/nix.conf" <<CONF
experimental-features = nix-command
substituters =
sandbox = true
sandbox-fallback = false
builders =
trusted-users = root
build-users-group =
narinfo-cache-negative-ttl = 0
post-build-hook = $W/nix/hook.sh
CONF
cat > "$W/nix/demo.nix" <<'NIX'
let
  bb = builtins.path { path = ./bbdir; name = "busybox-static"; };
  mk = name: script: extra: builtins.derivation ({
    inherit name; system = builtins.currentSystem;
    builder = "${bb}/bin/busybox"; args = [ "sh" "-c" script ];
  } // extra);
in rec {
  # The builder's own "NixOS system": what boot measurement covers.
  system = mk "demo-system" "mkdir -p $out/bin; echo 'builder system v1' > $out/version" {};
  system-v2 = mk "demo-system" "mkdir -p $out/bin; echo 'builder system v2' > $out/version" {};
  greeting = mk "greeting" "echo hello from a builder > $out" {};
  tool = mk "tool" ''
    mkdir -p $out/bin $doc
    printf '#!/bin/sh\ncat ${greeting}\n' > $out/bin/greet
    chmod +x $out/bin/greet
    echo "docs" > $doc/README
  '' { outputs = [ "out" "doc" ]; };
  app = mk "app" "echo uses ${tool}/bin/greet > $out" {};
}
NIX
setpriv --pdeathsig KILL -- env -u NIX_REMOTE NIX_CONF_DIR="$W/nix/etc" NIX_STATE_DIR="$NIXSTATE" \
  XDG_CACHE_HOME="$W/nix/xdg" nix-daemon --store "$ROOT" >"$W/nix/daemon.log" 2>&1 & PIDS+=($!)
for _ in $(seq 200); do [ -S "$NIXSTATE/daemon-socket/socket" ] && break; sleep 0.05; done
export NIX_CONF_DIR=$W/nix/etc XDG_CACHE_HOME=$W/nix/xdg
STORE="unix://$NIXSTATE/daemon-socket/socket"
nixbuild() { nix-build --store "$STORE" --no-out-link "$W/nix/demo.nix" "$@" 2>>"$W/nix/build.log"; }

say "3. boot: measure the system closure into the system PCR, then enroll"
SYSTEM=$(nixbuild -A system)
rm -rf "$PROVENIX_SPOOL_DIR"  # that build's hook spooled a job: not a build to record
"$AGENT" measure --root "$ROOT" --insecure-test-toplevel "$SYSTEM"
"$AGENT" enroll --no-event-log

say "4. the agent daemon: takes jobs from the hook, serves its log on loopback"
"$AGENT" run --listen 127.0.0.1:0 --plain-http --batch-delay-ms 100 2>"$W/agent/daemon.log" & DAEMON=$!
PIDS+=("$DAEMON")
URL=
for _ in $(seq 200); do
  URL=$(sed -n 's/.*serving the log at \(http[^ ]*\)\/$/\1/p' "$W/agent/daemon.log" | head -n1)
  [ -n "$URL" ] && [ -S "$PROVENIX_SOCKET" ] && break; sleep 0.05
done
[ -n "$URL" ] || fail "the daemon did not start: $(cat "$W/agent/daemon.log")"
echo "log service at $URL"

say "5. build with real Nix: every build goes through the hook into the log"
APP=$(nixbuild -A app)
TOOL=$(nixbuild -A tool | head -n1)
GREETING=$(nixbuild -A greeting)
echo "built $APP"
echo "      $TOOL (+ doc)"
echo "      $GREETING"
for _ in $(seq 200); do
  n=$(curl -fsS "$URL/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print((s["log"] or {}).get("entries", 0))')
  [ "$n" -ge 3 ] && break; sleep 0.1
done
[ "$n" -eq 3 ] || fail "the log holds $n entries, not 3: $(cat "$W/agent/daemon.log")"
grep 'INFO recorded' "$W/agent/daemon.log" | sed 's/^/  /'

say "6. the log"
"$AGENT" status
echo
echo "GET $URL/checkpoint"
curl -fsS "$URL/checkpoint" | sed 's/^/  /'
name=${GREETING#/nix/store/}
echo "GET $URL/lookup/output/$name"
curl -fsS "$URL/lookup/output/$name" | python3 -m json.tool | sed 's/^/  /' | head -n 30
ours=$(curl -fsS "$URL/lookup/output/$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["outputs"][0]["nar_hash"])')
theirs="sha256:$(nix-hash --type sha256 --base32 "$ROOT$GREETING")"
echo "  NAR hash in the log: $ours"
echo "  nix-hash of the path: $theirs"
[ "$ours" = "$theirs" ] || fail "the log's NAR hash differs from nix-hash's"

say "7. verify with provenix: the whole log, then the entries one by one"
"$PROVENIX" verify --state-dir "$W/auditor" "$URL"
echo
SIZE=$(curl -fsS "$URL/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log"]["size"])')
curl -fsS -o "$W/bundle" "$URL/tile/entries/000.p/$SIZE"
SK=$(curl -fsS "$URL/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["enrollment"]["sk"])')
echo "SK in force (from the enrollment record): $SK"
"$PROVENIX" entry show --sk-public "$SK" "$W/bundle"
echo
echo "a copy with one byte of greeting's NAR hash changed:"
python3 - "$W/bundle" "$W/tampered" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
drv = data.find(b"-greeting.drv")
i = data.find(b"-greeting", drv + 1) + len(b"-greeting")  # the output path; its NAR hash follows
data[i] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
set +e
"$PROVENIX" entry show --sk-public "$SK" "$W/tampered" >/dev/null
rc=$?
set -e
echo "  exit code $rc (1 = verification failed)"
[ "$rc" -eq 1 ] || fail "tampering was not detected"

say "7b. the auditor: activate the builder's AK, then decide with a policy"
mkdir -p "$W/auditor/activations"
AUDITOR_KEY=$("$PROVENIX" activate init --name auditor.demo --key "$W/auditor/auditor.key")
AK_NAME=$(curl -fsS "$URL/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["enrollment"]["builder"])')
# The approved system: predicted from the system closure's content.
"$PROVENIX" predict --toplevel "$SYSTEM" --store-root "$ROOT" --json >"$W/auditor/system.json"
cat > "$W/auditor/policy.toml" <<POLICY
# A demo policy: one builder on a software TPM (insecure: demo only).
insecure_allow_swtpm = true
quorum = 1
approved_systems = ["system.json"]
# No firmware boots this swtpm: PCRs 4 and 9 hold no events, so they are
# pinned on first use here rather than predicted from a UKI.
pin_pcrs = [0, 2, 4, 7, 9]
ek_roots = ["$T/ca/swtpm-localca-rootca-cert.pem"]
ek_intermediates = ["$T/ca/issuercert.pem"]
trusted_activators = ["$AUDITOR_KEY"]
activations = ["activations"]

[[builder]]
name = "demo-builder"
log = "$URL"
ak_name = "$AK_NAME"
POLICY
echo "before activation:"
set +e
"$PROVENIX" decide --policy "$W/auditor/policy.toml" "$GREETING" | sed 's/^/  /'
set -e
"$PROVENIX" activate online --policy "$W/auditor/policy.toml" --key "$W/auditor/auditor.key" \
  --out "$W/auditor/activations/demo-builder.activation" "$URL"
echo "after activation:"
"$PROVENIX" decide --policy "$W/auditor/policy.toml" "$GREETING" | sed 's/^/  /'

say "8. sign-cache: plain Nix substitutes from a binary cache trusting only the builder's log key"
nix copy --store "$ROOT" --to "file://$W/cache?compression=none" "$APP" 2>>"$W/nix/build.log"
"$AGENT" sign-cache "file://$W/cache" --agent "$URL"
LKPUB=$(curl -fsS "$URL/sig/${GREETING#/nix/store/}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
mkdir -p "$W/fresh/etc"
cat > "$W/fresh/etc/nix.conf" <<CONF
substituters = file://$W/cache
trusted-public-keys = $LKPUB
require-sigs = true
build-users-group =
CONF
NIX_CONF_DIR=$W/fresh/etc XDG_CACHE_HOME=$W/fresh/xdg nix-store --store "$W/fresh/root" --realise "$APP" 2>&1 | sed 's/^/  /'
[ -e "$W/fresh/root$APP" ] || fail "the fresh store did not substitute $APP"
echo "  the fresh store holds $APP, trusting only $LKPUB"

say "9. stop the daemon (SIGTERM); reboot into the same system, then into another"
kill -TERM "$DAEMON"; wait "$DAEMON" || fail "the daemon did not stop cleanly"
tail -n 2 "$W/agent/daemon.log" | sed 's/^/  /'
boot_swtpm
"$AGENT" measure --root "$ROOT" --insecure-test-toplevel "$SYSTEM" >/dev/null
"$AGENT" status | sed 's/^/  /'
SYSTEM2=$(nixbuild -A system-v2)
echo "  (the daemon is down: the hook spooled system-v2's build for the next start)"
boot_swtpm
"$AGENT" measure --root "$ROOT" --insecure-test-toplevel "$SYSTEM2" >/dev/null
set +e
"$AGENT" status >"$W/status2" 2>&1
rc=$?
set -e
sed 's/^/  /' "$W/status2"
[ "$rc" -eq 1 ] || fail "SK was derivable in another boot state"

say "10. the operator re-binds SK to system-v2; the auditor's policy does not approve it"
"$AGENT" enroll --rebind --no-event-log | sed 's/^/  /'
"$AGENT" run --batch-delay-ms 100 2>"$W/agent/daemon2.log" & DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 200); do
  grep -q 'INFO recorded' "$W/agent/daemon2.log" && break; sleep 0.1
done
kill -TERM "$DAEMON" && wait "$DAEMON" || fail "the daemon did not run: $(cat "$W/agent/daemon2.log")"
set +e
"$PROVENIX" verify --policy "$W/auditor/policy.toml" --state-dir "$W/auditor" "$PROVENIX_LOG_DIR" >"$W/verify2" 2>&1
rc=$?
set -e
sed 's/^/  /' "$W/verify2"
[ "$rc" -eq 1 ] && grep -q "not an approved system" "$W/verify2" || fail "system-v2 was not refused"

say "done: 3 builds recorded, attested, logged, served, verified; plain Nix trusted them through LK; SK lives only in the enrolled boot state; an unapproved system is refused"
