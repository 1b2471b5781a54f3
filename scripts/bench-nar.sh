#!/usr/bin/env bash
# NAR hashing benchmark (docs/BENCHMARKS.md): provenix nar-hash against
# nix-hash and the machine's raw SHA-256 rate, in one run, warm page cache.
#   scripts/bench-nar.sh [TREE]     (default /usr/lib/x86_64-linux-gnu)
# Prints a Markdown table of medians and ratios; raw hyperfine JSON is kept
# in $OUT (default target/bench-nar).
set -euo pipefail
cd "$(dirname "$0")/.."
TREE=${1:-/usr/lib/x86_64-linux-gnu}
OUT=${OUT:-target/bench-nar}
RUNS=${RUNS:-7}
mkdir -p "$OUT"
for c in hyperfine nix-hash nix-store openssl; do
  command -v "$c" >/dev/null || { apt-get install -y -qq hyperfine nix-bin openssl >/dev/null; break; }
done
cargo build --release --locked -q -p provenix-verifier
BIN=$PWD/target/release/provenix

# Frozen path list for the many-trees case: top-level directories and files
# over 2 MB of $TREE, sorted.
LIST=$OUT/paths.txt
( find "$TREE" -mindepth 1 -maxdepth 1 -type d; find "$TREE" -mindepth 1 -maxdepth 1 -type f -size +2M ) | LC_ALL=C sort > "$LIST"
NPATHS=$(wc -l < "$LIST")

NAR=$OUT/tree.nar
nix-store --dump "$TREE" > "$NAR"
NAR_BYTES=$(stat -c %s "$NAR")
# Warm the page cache for everything measured.
cat "$NAR" > /dev/null
"$BIN" nar-hash "$TREE" > /dev/null
xargs -d '\n' "$BIN" nar-hash < "$LIST" > /dev/null

# Total NAR bytes of the many-trees set (sizes as hashed, not du's disk use).
MANY_BYTES=$(xargs -d '\n' "$BIN" nar-hash --json < "$LIST" | python3 -c 'import json,sys; print(sum(json.loads(l)["nar_size"] for l in sys.stdin))')
echo "tree: $TREE, NAR $NAR_BYTES bytes; many: $NPATHS paths, NAR $MANY_BYTES bytes in all"
echo "checking that both tools agree on every path first"
"$BIN" nar-hash "$TREE" | sed 's/^sha256://' > "$OUT/ours-big.txt"
nix-hash --type sha256 --base32 "$TREE" > "$OUT/nix-big.txt"
cmp "$OUT/ours-big.txt" "$OUT/nix-big.txt"
xargs -d '\n' "$BIN" nar-hash < "$LIST" | sed 's/^sha256:\([^ ]*\)  .*/\1/' > "$OUT/ours-many.txt"
xargs -d '\n' -n 1 nix-hash --type sha256 --base32 < "$LIST" > "$OUT/nix-many.txt"
cmp "$OUT/ours-many.txt" "$OUT/nix-many.txt"

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/big.json" \
  -n "provenix nar-hash (1 tree)" "$BIN nar-hash $TREE" \
  -n "nix-hash --type sha256 --base32" "nix-hash --type sha256 --base32 $TREE" \
  -n "openssl dgst -sha256 of the NAR file" "openssl dgst -sha256 $NAR" >&2
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/many.json" \
  -n "provenix nar-hash -j 2 ($NPATHS paths)" "xargs -d '\n' $BIN nar-hash -j 2 < $LIST" \
  -n "provenix nar-hash -j 1" "xargs -d '\n' $BIN nar-hash -j 1 < $LIST" \
  -n "xargs -P 2 -n 1 nix-hash" "xargs -d '\n' -P 2 -n 1 nix-hash --type sha256 --base32 < $LIST" >&2
RAW=$(openssl speed -evp sha256 -seconds 2 -bytes 16384 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)

python3 - "$OUT" "$NAR_BYTES" "$MANY_BYTES" "$RAW" <<'PY'
import json, statistics, sys
out, nar_bytes, many_bytes, raw_k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
raw = raw_k * 1000  # openssl prints 1000s of bytes per second
def load(name):
    return [(r["command"], statistics.median(r["times"])) for r in json.load(open(f"{out}/{name}.json"))["results"]]
big, many = load("big"), load("many")
print(f"openssl speed -evp sha256 (16 KiB blocks): {raw/1e9:.2f} GB/s\n")
print("| case | command | median (s) | throughput | ratio |")
print("|---|---|---:|---:|---:|")
ours = big[0][1]
for cmd, t in big:
    print(f"| one tree, NAR {nar_bytes/1e6:.0f} MB | {cmd} | {t:.3f} | {nar_bytes/t/1e9:.2f} GB/s | {t/ours:.2f}x provenix time |")
print(f"| one tree | raw SHA-256 bound (openssl speed) | {nar_bytes/raw:.3f} | {raw/1e9:.2f} GB/s | provenix reaches {nar_bytes/ours/raw*100:.0f}% of raw |")
ours = many[0][1]
for cmd, t in many:
    print(f"| many trees, {many_bytes/1e6:.0f} MB of NAR | {cmd} | {t:.3f} | {many_bytes/t/1e9:.2f} GB/s | {t/ours:.2f}x provenix -j 2 time |")
PY
