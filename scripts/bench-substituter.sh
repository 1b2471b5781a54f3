#!/usr/bin/env bash
# Substituter speed, in one run (docs/BENCHMARKS.md):
#  - upstream: a binary cache made by `nix copy` of a $MIB MiB path of
#    random bytes and $SMALL small paths, once with compression=zstd and once
#    with compression=none, served over HTTP by Python's http.server;
#  - a builder log attesting exactly those paths (agent/examples/synth_log.rs
#    on an EK-certified swtpm: real SK signatures, real AK quotes);
#  - `provenix substituter` (release build) in front of each cache, with a
#    policy of that one builder (quorum 1);
#  - narinfo: $RUNS sequential GETs of one narinfo, a new connection each,
#    from upstream directly and through the substituter: median latency,
#    requests per second, and the latency the substituter adds;
#  - NAR: the big NAR fetched with curl $NAR_RUNS times from upstream and
#    through the substituter (which decompresses and hashes it on the way):
#    median throughput and the ratio; once with upstream as fast as this
#    machine serves loopback, once with upstream sending at $RATE_MBIT
#    Mbit/s (default 1000: a cache across a 1 Gbit/s network).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-256}
SMALL=${SMALL:-20}
RUNS=${RUNS:-500}
NAR_RUNS=${NAR_RUNS:-5}
RATE_MBIT=${RATE_MBIT:-1000}
W=$(mktemp -d /tmp/provenix-bench-sub.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
. scripts/lib/swtpm.sh
export TSS2_LOG=all+none XDG_CACHE_HOME=$W/xdg
unset NIX_REMOTE || true
cargo build --release -q -p provenix-verifier -p provenix-agent --example synth_log
cargo build --release -q -p provenix-verifier

# The paths, in a chroot store.
mkdir -p "$W/store" "$W/in"
head -c $((MIB * 1024 * 1024)) /dev/urandom > "$W/in/big"
PATHS=("$(nix-store --store "$W/store" --add "$W/in/big")")
for i in $(seq "$SMALL"); do
  printf 'small path %s\n' "$i" > "$W/in/small-$i"
  PATHS+=("$(nix-store --store "$W/store" --add "$W/in/small-$i")")
done
BIG=${PATHS[0]}
HASH=$(basename "$BIG" | cut -c1-32)

PORT=$(free_port_pair)
SWTPM_PID=
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# serve DIR PORT [BYTES_PER_SECOND]: a static HTTP server (Python's
# http.server), sending at most BYTES_PER_SECOND per connection if given.
serve() {
  setpriv --pdeathsig KILL -- python3 - "$@" >/dev/null 2>&1 <<'PY' & PIDS+=($!)
import functools, http.server, sys, time
d, port = sys.argv[1], int(sys.argv[2])
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
class H(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, src, dst):
        if not rate:
            return super().copyfile(src, dst)
        t0, sent = time.perf_counter(), 0
        while chunk := src.read(256 * 1024):
            dst.write(chunk)
            sent += len(chunk)
            ahead = sent / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(H, directory=d)).serve_forever()
PY
}

# median_get URL: median seconds per GET over $RUNS (a new connection each).
median_get() {
  python3 - "$1" "$RUNS" <<'PY'
import statistics, sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
ts = []
for _ in range(n):
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        r.read()
        assert r.status == 200
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.6f}")
PY
}
# median_nar URL: median bytes/s of a curl download over $NAR_RUNS.
median_nar() {
  for _ in $(seq "$NAR_RUNS"); do curl -fsS -o /dev/null -w '%{speed_download}\n' "$1"; done |
    python3 -c 'import statistics,sys; print(statistics.median(float(l) for l in sys.stdin))'
}

# substituter UPSTREAM_PORT LOG: start `provenix substituter` in front of
# that upstream with this round's policy and key; set SUB_URL once both
# answer.
substituter() {
  setpriv --pdeathsig KILL -- target/release/provenix substituter --listen 127.0.0.1:0 --plain-http \
    --upstream "http://127.0.0.1:$1" --policy "$W/policy-$COMP.toml" --key "$W/sub-$COMP.key" \
    2>"$2" & PIDS+=($!)
  SUB_URL=
  for _ in $(seq 200); do
    SUB_URL=$(sed -n 's|.*substituting at \(http://[^/]*\)/.*|\1|p' "$2" | head -n1)
    [ -n "$SUB_URL" ] && curl -fsS -o /dev/null "http://127.0.0.1:$1/nix-cache-info" 2>/dev/null && return
    sleep 0.05
  done
  cat "$2"; exit 1
}

for COMP in zstd none; do
  UP=$W/up-$COMP
  nix --extra-experimental-features nix-command copy --store "$W/store" \
    --to "file://$UP?compression=$COMP" "${PATHS[@]}" 2>/dev/null
  N=$(ls "$UP"/*.narinfo | wc -l)
  rm -rf "$W/agent" "$W/log-$COMP"
  # A fresh TPM state per log: enrollment makes the AK and the counter.
  if [ -n "$SWTPM_PID" ]; then kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true; fi
  provision_swtpm "$W/tpm"; start_swtpm "$W/tpm/state" "$PORT"; PIDS+=("$SWTPM_PID")
  target/release/examples/synth_log "swtpm:host=127.0.0.1,port=$PORT" "$W/agent" "$W/log-$COMP" "$N" 1000 "$UP" >/dev/null
  AK=$(head -n1 "$W/log-$COMP/checkpoint" | sed 's|^provenix/||')
  cat > "$W/policy-$COMP.toml" <<POLICY
insecure_allow_swtpm = true
quorum = 1
danger_skip_credential_activation = true
danger_any_system = true
ek_roots = ["$W/tpm/ca/swtpm-localca-rootca-cert.pem"]
ek_intermediates = ["$W/tpm/ca/issuercert.pem"]
[[builder]]
name = "bench"
log = "$W/log-$COMP"
ak_name = "$AK"
POLICY
  target/release/provenix substituter init --name bench --key "$W/sub-$COMP.key" >/dev/null 2>&1 || true
  UPORT=$(port); serve "$UP" "$UPORT"
  SLOW=$(port); serve "$UP" "$SLOW" $((RATE_MBIT * 1000 * 1000 / 8))
  substituter "$UPORT" "$W/sub-$COMP.log"; SURL=$SUB_URL
  curl -fsS "$SURL/$HASH.narinfo" > "$W/narinfo-$COMP" || { cat "$W/sub-$COMP.log"; exit 1; }
  URL=$(sed -n 's/^URL: //p' "$W/narinfo-$COMP")
  UP_NARINFO=$(median_get "http://127.0.0.1:$UPORT/$HASH.narinfo")
  SUB_NARINFO=$(median_get "$SURL/$HASH.narinfo")
  UP_NAR=$(median_nar "http://127.0.0.1:$UPORT/$URL")
  SUB_NAR=$(median_nar "$SURL/$URL")
  # The same through a second substituter whose upstream sends at RATE_MBIT.
  substituter "$SLOW" "$W/slow-$COMP.log"; SLOWURL=$SUB_URL
  curl -fsS -o /dev/null "$SLOWURL/$HASH.narinfo"
  UP_SLOW=$(median_nar "http://127.0.0.1:$SLOW/$URL")
  SUB_SLOW=$(median_nar "$SLOWURL/$URL")
  SIZE=$(stat -c %s "$UP/$URL")
  python3 - "$COMP" "$UP_NARINFO" "$SUB_NARINFO" "$UP_NAR" "$SUB_NAR" "$UP_SLOW" "$SUB_SLOW" "$SIZE" "$MIB" "$RATE_MBIT" <<'PY'
import sys
comp = sys.argv[1]
up, sub, upn, subn, ups, subs = map(float, sys.argv[2:8])
size, mib, rate = int(sys.argv[8]), int(sys.argv[9]), sys.argv[10]
print(f"BENCH {comp}: narinfo upstream {up*1e3:.2f} ms, through the substituter {sub*1e3:.2f} ms "
      f"({1/sub:.0f} requests/s sequential): {(sub-up)*1e3:.2f} ms added at the median (target <= 1 ms)")
print(f"BENCH {comp}: NAR of {mib} MiB ({size/2**20:.1f} MiB as stored), loopback upstream: "
      f"{upn/2**20:.0f} MiB/s direct, {subn/2**20:.0f} MiB/s through the substituter: {subn/upn*100:.0f}%")
print(f"BENCH {comp}: the same, upstream at {rate} Mbit/s: {ups/2**20:.0f} MiB/s direct, "
      f"{subs/2**20:.0f} MiB/s through the substituter: {subs/ups*100:.0f}% (target >= 90%)")
PY
done
