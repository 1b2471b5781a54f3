#!/usr/bin/env bash
# Log verification speed and memory, in one run (docs/BENCHMARKS.md):
#  - a builder log of $ENTRIES entries (default 1,000,000) in batches of
#    $BATCH (default 1000), written by agent/examples/synth_log.rs on an
#    EK-certified swtpm: real SK signatures, real AK quotes and counter;
#  - `provenix verify` of the whole log directory: wall and CPU time,
#    entries per second, and its peak memory (max RSS);
#  - the per-entry floor in process (verifier/benches/entries.rs): leaf
#    hash + decode + SK signature only, on the first 20,000 of the same entries.
# The log takes about 0.5 GB on disk while it runs; it is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-1000000}
BATCH=${BATCH:-1000}
W=$(mktemp -d /tmp/provenix-bench-log.XXXXXX)
SWTPM=
trap '[ -n "$SWTPM" ] && kill "$SWTPM" 2>/dev/null; rm -rf "$W"' EXIT
. scripts/lib/swtpm.sh
export TSS2_LOG=all+none
provision_swtpm "$W/tpm"
PORT=$(free_port_pair)
start_swtpm "$W/tpm/state" "$PORT"; SWTPM=$SWTPM_PID
cargo build --release -q -p provenix-verifier -p provenix-agent --example synth_log
T0=$(date +%s.%N)
target/release/examples/synth_log "swtpm:host=127.0.0.1,port=$PORT" "$W/agent" "$W/log" "$ENTRIES" "$BATCH"
T1=$(date +%s.%N)
echo "BENCH written in $(python3 -c "print(f'{$T1 - $T0:.1f}')") s; log size $(du -sh "$W/log" | cut -f1)"
python3 - "$W/log" "$ENTRIES" <<'PY'
import resource, subprocess, sys, time
log, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
out = subprocess.run(["target/release/provenix", "verify", "--json", log],
                     check=True, capture_output=True, text=True).stdout
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
assert '"verified":true' in out, out
print(f"BENCH provenix verify: {n} entries in {wall:.1f} s wall, {cpu:.1f} s CPU: "
      f"{n / cpu:.0f} entries/s per core ({n / wall:.0f}/s wall); max RSS {ru.ru_maxrss / 1024:.1f} MB")
with open(f"{log}/../cpu", "w") as f:
    f.write(f"{cpu / n:.9f}")
PY
SK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sk"])' <(target/release/provenix-agent --tcti "swtpm:host=127.0.0.1,port=$PORT" --insecure-allow-swtpm keys --json --state-dir "$W/agent"))
OUT=$(LOG_DIR=$W/log SK_HEX=$SK cargo bench -q -p provenix-verifier --bench entries)
echo "$OUT" | grep -v '^BENCH floor_seconds'
FLOOR=$(echo "$OUT" | sed -n 's/^BENCH floor_seconds //p')
python3 -c "import sys; full=float(open('$W/cpu').read()); floor=$FLOOR; print(f'BENCH verify per entry {full*1e6:.1f} µs CPU vs the floor {floor*1e6:.1f} µs: {full/floor:.2f}x')"
