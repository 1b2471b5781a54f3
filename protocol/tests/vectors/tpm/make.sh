#!/usr/bin/env bash
# Regenerates the TPM vectors beside this script with REAL tools: a fresh
# swtpm (TPM 2.0 emulator) driven by tpm2-tools, nothing computed by provenix.
# Needs: swtpm, tpm2-tools, python3 (free ports), xxd. Run from anywhere:
#   bash protocol/tests/vectors/tpm/make.sh
# Every run makes new keys and signatures (and so new files); the tests read
# whatever set is committed. See README.md for what each file is.
set -euo pipefail
OUT=$(cd "$(dirname "$0")" && pwd)
for tool in swtpm tpm2_createek tpm2_quote tpm2_print python3 xxd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install swtpm tpm2-tools python3 xxd)" >&2; exit 2; }
done

WORK=$(mktemp -d)
SWTPM_PID=
cleanup() {
  if [ -n "$SWTPM_PID" ]; then kill "$SWTPM_PID" 2>/dev/null || true; wait "$SWTPM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free port pair P, P+1 on 127.0.0.1 (swtpm's server and control ports).
PORT=$(python3 - <<'PY'
import socket, random
for _ in range(200):
    p = random.randint(20000, 60000)
    socks = []
    try:
        for q in (p, p + 1):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
)
mkdir -p "$WORK/state"
swtpm socket --tpm2 \
  --server type=tcp,port="$PORT",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
  --tpmstate dir="$WORK/state" --flags not-need-init,startup-clear \
  >"$WORK/swtpm.log" 2>&1 &
SWTPM_PID=$!
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
for _ in $(seq 50); do tpm2_getcap properties-fixed >/dev/null 2>&1 && break; sleep 0.1; done
tpm2_getcap properties-fixed >/dev/null

cd "$WORK"
# No resource manager: flush what each tool leaves loaded.
fl() { tpm2_flushcontext -t; tpm2_flushcontext -s; tpm2_flushcontext -l; }

# Non-zero PCR values (fixed inputs) so that quotes cover real data.
tpm2_pcrextend \
  "0:sha1=0000000000000000000000000000000000000001,sha256=0000000000000000000000000000000000000000000000000000000000000000" \
  "4:sha256=0404040404040404040404040404040404040404040404040404040404040404" \
  "7:sha256=0707070707070707070707070707070707070707070707070707070707070707" \
  "9:sha256=0909090909090909090909090909090909090909090909090909090909090909" \
  "14:sha256=1414141414141414141414141414141414141414141414141414141414141414"

# Endorsement keys (TCG EK Credential Profile templates): RSA 2048 (L-1),
# ECC P-256 (L-2), ECC P-384 (H-3, what swtpm_setup makes by default).
tpm2_createek -G rsa -c ek_rsa.ctx -u ek_rsa.pub; fl
tpm2_createek -G ecc -c ek_ecc256.ctx -u ek_ecc256.pub; fl
tpm2_createek -G ecc384 -c ek_ecc384.ctx -u ek_ecc384.pub; fl

# Attestation keys under the EKs (restricted signing keys); -n writes the
# Name, and stdout prints name and qualified name.
tpm2_createak -C ek_ecc256.ctx -c ak_ecc.ctx -G ecc -g sha256 -s ecdsa \
  -u ak_ecc.pub -n ak_ecc.name >ak_ecc.yaml; fl
tpm2_createak -C ek_ecc384.ctx -c ak_ecc384.ctx -G ecc384 -g sha384 -s ecdsa \
  -u ak_ecc384.pub -n ak_ecc384.name >ak_ecc384.yaml; fl
tpm2_createak -C ek_rsa.ctx -c ak_rsa.ctx -G rsa -g sha256 -s rsassa \
  -u ak_rsa.pub -n ak_rsa.name >ak_rsa.yaml; fl
tpm2_createak -C ek_rsa.ctx -c ak_rsapss.ctx -G rsa -g sha256 -s rsapss \
  -u ak_rsapss.pub -n ak_rsapss.name >ak_rsapss.yaml; fl
tpm2_readpublic -c ak_ecc.ctx >ak_ecc.readpublic.yaml; fl

# Quotes: -m TPMS_ATTEST, -s TPMT_SIGNATURE, -o PCR values (-F values:
# concatenated in selection order); stdout has the PCR values and the digest
# tpm2-tools recomputed; tpm2_print decodes the attest.
SEAL=sha256:0,2,4,7,9,12,13,14
quote() { # name ak pcrs nonce hash [extra...]
  local n=$1 ak=$2 pcrs=$3 q=$4 g=$5; shift 5
  tpm2_quote -c "$ak" -l "$pcrs" -q "$q" -g "$g" "$@" \
    -m "$n.attest" -s "$n.sig" -o "$n.pcrs" -F values >"$n.yaml"
  fl
  tpm2_print -t TPMS_ATTEST "$n.attest" >"$n.attest.yaml"
  echo "$pcrs" >"$n.selection"
}
quote quote_ecc ak_ecc.ctx "$SEAL" \
  5e1ec7ed000102030405060708090a0b0c0d0e0f101112131415161718191a1b sha256
quote quote_ecc384 ak_ecc384.ctx "sha1:0,1+sha256:0,4,14" aabbccdd sha384
quote quote_rsa ak_rsa.ctx "$SEAL" 0011223344556677 sha256
quote quote_rsapss ak_rsapss.ctx "$SEAL" 8899aabbccddeeff sha256 --scheme rsapss

# PolicyPCR over the seal set in a trial session, and the PCR values it saw.
tpm2_startauthsession -S trial.ctx
tpm2_policypcr -S trial.ctx -l "$SEAL" -L policy_pcr.digest >/dev/null
tpm2_flushcontext trial.ctx; fl
tpm2_pcrread "$SEAL" -o policy_pcr.pcrs >policy_pcr.yaml
echo "$SEAL" >policy_pcr.selection

# K: a keyedHash HMAC key usable only under that policy (DESIGN.md), and
# TPM2_Certify of K by the ECC AK (tpm2-tools 5.4 always sends extraData
# 00ff55aa; tpm2_print cannot decode a certify attest, so its partial
# output is kept as it is).
tpm2_createprimary -C o -G ecc -c primary.ctx >/dev/null; fl
tpm2_create -C primary.ctx -G hmac -g sha256 -L policy_pcr.digest \
  -a "fixedtpm|fixedparent|sensitivedataorigin|sign" -u k.pub -r k.priv >/dev/null; fl
tpm2_load -C primary.ctx -u k.pub -r k.priv -c k.ctx -n k.name >/dev/null; fl
tpm2_certify -c k.ctx -C ak_ecc.ctx -g sha256 -o certify_ecc.attest -s certify_ecc.sig >/dev/null; fl
tpm2_print -t TPMS_ATTEST certify_ecc.attest >certify_ecc.attest.yaml 2>/dev/null || true

# Credentials made by tpm2-tools' own software MakeCredential (no TPM):
# tpm2-tools' file format (0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
# TPM2B_ENCRYPTED_SECRET).
printf 'provenix vector!' >credential.secret
tpm2_makecredential -T none -u ek_rsa.pub -s credential.secret \
  -n "$(xxd -p -c 256 ak_rsa.name)" -o credential_rsa.bin 2>/dev/null
tpm2_makecredential -T none -u ek_ecc384.pub -s credential.secret \
  -n "$(xxd -p -c 256 ak_ecc.name)" -o credential_ecc384.bin 2>/dev/null

{
  echo "made: $(date -u +%Y-%m-%d)"
  echo "swtpm: $(swtpm --version 2>&1 | head -n 1)"
  echo "tpm2-tools: $(tpm2_quote --version)"
  echo "libtss2-esys: $(dpkg-query -W -f '${Version}' 'libtss2-esys*' 2>/dev/null || echo unknown)"
  echo "libtpms: $(dpkg-query -W -f '${Version}' 'libtpms0' 2>/dev/null || echo unknown)"
} >versions.txt

rm -f "$OUT"/*.pub "$OUT"/*.name "$OUT"/*.attest "$OUT"/*.sig "$OUT"/*.pcrs \
  "$OUT"/*.yaml "$OUT"/*.selection "$OUT"/*.digest "$OUT"/*.bin "$OUT"/credential.secret
cp -- *.pub *.name *.attest *.sig *.pcrs *.yaml *.selection *.digest *.bin \
  credential.secret versions.txt "$OUT"/
echo "vectors written to $OUT"
