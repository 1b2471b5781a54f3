#!/usr/bin/env bash
# Quote verification speed, in one run (docs/BENCHMARKS.md):
#  - evidence: an ECC P-256 AK under the EK of an swtpm, and a tpm2_quote
#    of sha256:0,2,4,7,9,12,13,14 (the default seal set) with its
#    serialized PCR file;
#  - tpm2_checkquote on those files: median wall time per invocation over
#    $RUNS runs (a process per quote is how tpm2-tools verifies);
#  - provenix quote verify's checks in process, and a bare P-256 verify of
#    the same signature (verifier/benches/quote.rs);
#  - `provenix quote verify` as a process too, for the like-for-like figure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
W=$(mktemp -d /tmp/provenix-bench-quote.XXXXXX)
SWTPM=
trap '[ -n "$SWTPM" ] && kill "$SWTPM" 2>/dev/null; rm -rf "$W"' EXIT
mkdir -p "$W/state"
. scripts/lib/swtpm.sh
PORT=$(free_port_pair)
start_swtpm "$W/state" "$PORT"; SWTPM=$SWTPM_PID
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT" TSS2_LOG=all+none
cd "$W"
t() { "$@" >/dev/null; tpm2_flushcontext -t; tpm2_flushcontext -s; }
t tpm2_createek -c ek.ctx -G rsa -u ek.pub
t tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pem -f pem -n ak.name
t tpm2_readpublic -c ak.ctx -o ak.tpm2b
NONCE=5e1ec7ed000102030405060708090a0b0c0d0e0f101112131415161718191a1b
echo -n "$NONCE" > nonce.hex
t tpm2_quote -c ak.ctx -l sha256:0,2,4,7,9,12,13,14 -q "$NONCE" -m q.msg -s q.sig -o q.pcrs -g sha256
cd - >/dev/null
cargo build --release -q -p provenix-verifier
PROVENIX=$PWD/target/release/provenix
timeit() {  # median seconds per run of "$@" over $RUNS runs
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
runs = int(sys.argv[1]); cmd = sys.argv[2:]
ts = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.6f}")
PY
}
CHECK=$(cd "$W" && timeit tpm2_checkquote -u ak.pem -m q.msg -s q.sig -f q.pcrs -g sha256 -q "$NONCE")
OURS_PROC=$(cd "$W" && timeit "$PROVENIX" quote verify --ak ak.pem --msg q.msg --sig q.sig --pcrs q.pcrs --nonce "$NONCE")
OUT=$(QUOTE_DIR=$W cargo bench -q -p provenix-verifier --bench quote 2>/dev/null)
echo "$OUT" | grep -v '^BENCH seconds'
read -r _ _ FULL BARE <<<"$(echo "$OUT" | grep '^BENCH seconds')"
python3 - "$CHECK" "$OURS_PROC" "$FULL" "$BARE" <<'PY'
import sys
check, proc, full, bare = map(float, sys.argv[1:])
print(f"BENCH tpm2_checkquote: {check*1e3:.2f} ms per quote (a process each, median of the runs)")
print(f"BENCH provenix quote verify as a process: {proc*1e3:.2f} ms per quote ({check/proc:.1f}x faster than tpm2_checkquote)")
print(f"BENCH in process: {check/full:.0f}x tpm2_checkquote's rate (target >= 50x); {full/bare:.2f}x a bare P-256 verify (target <= 1.5x)")
PY
