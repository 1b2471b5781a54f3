#!/usr/bin/env bash
# extract.sh SERIAL_LOG OUTDIR
#
# Recovers what init.sh printed between its markers:
#   OUTDIR/eventlog.bin  the firmware event log, checked against the SHA-256
#                        the guest printed after it
#   OUTDIR/pcrs.json     every PCR of every bank as read in the guest, as
#                        {"sha256": {"0": "<lowercase hex>", ...}, ...}
#                        (the shape of `provenix eventlog --json`'s "pcrs")
# Firmware writes escape codes to the serial port and lines end in CR LF, so
# only whole marker lines count.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: extract.sh SERIAL_LOG OUTDIR"
serial=$1 out=$2
mkdir -p "$out"
text=$out/serial.txt.tmp
tr -d '\r' <"$serial" >"$text"

if grep -q '^=== PROVENIX-ERROR' "$text"; then
  die "guest: $(grep '^=== PROVENIX-ERROR' "$text" | head -n 1)"
fi
grep -q '^=== PROVENIX-EVENTLOG-BEGIN$' "$text" || die "no event log in $serial"
grep -q '^=== PROVENIX-EVENTLOG-END sha256=' "$text" || die "event log in $serial is cut short"
grep -q '^=== PROVENIX-PCRS-END$' "$text" || die "PCR values in $serial are cut short"

sed -n '/^=== PROVENIX-EVENTLOG-BEGIN$/,/^=== PROVENIX-EVENTLOG-END /{/^===/d;p}' "$text" |
  base64 -d >"$out/eventlog.bin"
want=$(sed -n 's/^=== PROVENIX-EVENTLOG-END sha256=\([0-9a-f]*\)$/\1/p' "$text")
got=$(sha256sum "$out/eventlog.bin" | cut -d' ' -f1)
[ "$want" = "$got" ] || die "event log garbled on the serial line: sha256 $got, guest said $want"

sed -n '/^=== PROVENIX-PCRS-BEGIN$/,/^=== PROVENIX-PCRS-END$/{/^===/d;p}' "$text" |
  awk '
    NF != 3 || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9A-Fa-f]+$/ {
      print "extract.sh: bad PCR line: " $0 > "/dev/stderr"; bad = 1; exit 1
    }
    {
      if (!($1 in seen)) { seen[$1] = 1; banks[++nb] = $1 }
      val[$1, $2] = tolower($3); idx[$1] = idx[$1] " " $2
    }
    END {
      if (bad || nb == 0) exit 1
      printf "{"
      for (b = 1; b <= nb; b++) {
        printf "%s\n  \"%s\": {", (b > 1 ? "," : ""), banks[b]
        n = split(substr(idx[banks[b]], 2), list, " ")
        for (i = 1; i <= n; i++)
          printf "%s\n    \"%s\": \"%s\"", (i > 1 ? "," : ""), list[i], val[banks[b], list[i]]
        printf "\n  }"
      }
      printf "\n}\n"
    }' >"$out/pcrs.json" || die "no usable PCR values in $serial"
rm -f "$text"
