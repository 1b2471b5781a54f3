#!/usr/bin/env bash
# `provenix-agent measure` on a large closure (docs/BENCHMARKS.md), against
# nix-hash over the same paths and the raw SHA-256 bound on both cores, in
# one run, warm page cache.
#   scripts/bench-measure.sh [TREE]   (default /usr/lib/x86_64-linux-gnu)
# The closure: every top-level directory and file over 2 MB of TREE (the
# frozen list of scripts/bench-nar.sh) copied into a store under a scratch
# root as /nix/store/<hash>-<name>, plus a toplevel referring to all of
# them, registered as nixpkgs' closureInfo would (`nix-store --dump-db`
# format). measure --no-extend hashes every path from content and opens no TPM.
set -euo pipefail
cd "$(dirname "$0")/.."
TREE=${1:-/usr/lib/x86_64-linux-gnu}
OUT=${OUT:-target/bench-measure}
RUNS=${RUNS:-7}
for c in hyperfine nix-hash openssl python3; do
  command -v "$c" >/dev/null || { apt-get install -y -qq hyperfine nix-bin openssl python3 >/dev/null; break; }
done
cargo build --release --locked -q -p provenix-agent -p provenix-verifier
AGENT=$PWD/target/release/provenix-agent
PROVENIX=$PWD/target/release/provenix
rm -rf "$OUT"; mkdir -p "$OUT/root/nix/store"
LIST=$OUT/src.txt
( find "$TREE" -mindepth 1 -maxdepth 1 -type d; find "$TREE" -mindepth 1 -maxdepth 1 -type f -size +2M ) | LC_ALL=C sort > "$LIST"
python3 - "$OUT" "$LIST" <<'PY'
import hashlib, os, shutil, sys
out, lst = sys.argv[1], sys.argv[2]
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
def fake_hash(name):
    d = int.from_bytes(hashlib.sha256(name.encode()).digest()[:20], "big")
    return "".join(alphabet[(d >> (5 * i)) & 31] for i in range(32))
paths = []
for src in open(lst).read().split("\n"):
    if not src:
        continue
    name = "".join(c if c.isalnum() or c in "+-._?=" else "_" for c in os.path.basename(src)).lstrip(".") or "x"
    p = f"/nix/store/{fake_hash(src)}-{name}"
    dst = out + "/root" + p
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)
    paths.append(p)
top = f"/nix/store/{fake_hash('toplevel')}-nixos-system-bench"
os.makedirs(out + "/root" + top)
with open(out + "/root" + top + "/refs", "w") as f:
    f.write("\n".join(paths) + "\n")
with open(out + "/paths.txt", "w") as f:
    f.write("\n".join(out + "/root" + p for p in paths + [top]) + "\n")
with open(out + "/toplevel", "w") as f:
    f.write(top)
PY
TOP=$(cat "$OUT/toplevel")
# The registration, with the NAR hashes the paths really have.
"$PROVENIX" nar-hash --json $(cat "$OUT/paths.txt") | python3 -c '
import json, sys
root, top = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in sys.stdin]
paths = [r["path"][len(root):] for r in rows]
for r, p in zip(rows, paths):
    refs = [q for q in paths if q != top] if p == top else []
    print(p); print(r["nar_hash"]); print(r["nar_size"]); print(""); print(len(refs))
    for q in refs: print(q)
' "$OUT/root" "$TOP" > "$OUT/registration"
NPATHS=$(wc -l < "$OUT/paths.txt")
BYTES=$("$PROVENIX" nar-hash --json $(cat "$OUT/paths.txt") | python3 -c 'import json,sys; print(sum(json.loads(l)["nar_size"] for l in sys.stdin))')
MEASURE="$AGENT measure --no-extend --root $OUT/root --registration $OUT/registration --insecure-test-toplevel $TOP -j 2"
$MEASURE > /dev/null  # warm, and check it runs
echo "closure: $NPATHS paths, $BYTES NAR bytes"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/measure.json" \
  -n "provenix-agent measure -j 2" "$MEASURE" \
  -n "xargs -P 2 -n 1 nix-hash (same paths)" "xargs -d '\n' -P 2 -n 1 nix-hash --type sha256 --base32 < $OUT/paths.txt" >&2
RAW=$(openssl speed -evp sha256 -seconds 2 -bytes 16384 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
python3 - "$OUT" "$BYTES" "$RAW" "$NPATHS" <<'PY'
import json, statistics, sys
out, nbytes, raw_k, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
raw2 = 2 * raw_k * 1000
res = [(r["command"], statistics.median(r["times"])) for r in json.load(open(f"{out}/measure.json"))["results"]]
print(f"| command ({n} paths, {nbytes/1e6:.0f} MB of NAR) | median (s) | throughput | ratio |")
print("|---|---:|---:|---:|")
ours = res[0][1]
for cmd, t in res:
    print(f"| {cmd} | {t:.3f} | {nbytes/t/1e9:.2f} GB/s | {t/ours:.2f}x measure's time |")
print(f"| raw SHA-256 bound, both cores (openssl speed x 2) | {nbytes/raw2:.3f} | {raw2/1e9:.2f} GB/s | measure reaches {nbytes/ours/raw2*100:.0f}% |")
PY
