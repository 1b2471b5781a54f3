#!/usr/bin/env bash
# tpm-provision.sh TPMSTATE CADIR [BANKS]
#
# Provisions a fresh swtpm TPM 2.0 state in TPMSTATE the way a manufacturer
# would: RSA and ECC EKs with certificates (and a platform certificate)
# signed by a local CA kept in CADIR, NV locked, PCR banks BANKS active
# (comma-separated, default sha1,sha256). The CA is made on first use; the
# root a verifier pins is CADIR/swtpm-localca-rootca-cert.pem. The EK
# certificates are also written to TPMSTATE/../ek-certs/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: tpm-provision.sh TPMSTATE CADIR [BANKS]"
state=$1 cadir=$2 banks=${3:-sha1,sha256}

need_cmd swtpm swtpm
need_cmd swtpm_setup swtpm-tools
need_cmd swtpm_localca swtpm-tools
need_cmd certtool gnutls-bin

mkdir -p "$state" "$cadir"
state=$(cd "$state" && pwd)
cadir=$(cd "$cadir" && pwd)
certs=$(dirname "$state")/ek-certs
mkdir -p "$certs"

subst_template "$VM_DIR/swtpm_setup.conf.in" "$cadir/swtpm_setup.conf" \
  "CADIR=$cadir" "BANKS=$banks"
subst_template "$VM_DIR/swtpm-localca.conf.in" "$cadir/swtpm-localca.conf" \
  "CADIR=$cadir"
cp "$VM_DIR/swtpm-localca.options" "$cadir/swtpm-localca.options"

if ! swtpm_setup --tpm2 --tpmstate "$state" --config "$cadir/swtpm_setup.conf" \
  --create-ek-cert --create-platform-cert --lock-nvram --overwrite \
  --pcr-banks "$banks" --write-ek-cert-files "$certs" \
  --logfile "$cadir/swtpm_setup.log" >/dev/null 2>&1; then
  cat "$cadir/swtpm_setup.log" >&2 || true
  die "swtpm_setup failed (log above)"
fi
[ -f "$cadir/swtpm-localca-rootca-cert.pem" ] || die "no local CA root in $cadir"
