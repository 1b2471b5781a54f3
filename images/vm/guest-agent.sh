#!/bin/sh
# Guest hook (e2e.sh): the agent in the initrd, as on a builder. Measures
# the closure init= names on the new root (/sysroot) into the system PCR,
# enrolls with the firmware event log, records one build, then prints its
# state and log (tar.gz, base64) between markers for the host.
export PATH=/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export TSS2_LOG=all+none PROVENIX_CONFIG=/dev/null
agent() {
  /provenix/provenix-agent --tcti device:/dev/tpmrm0 --insecure-allow-swtpm "$@"
}
fail() { echo "=== PROVENIX-AGENT-ERROR $*"; exit 0; }
state=/run/provenix/state
log=/run/provenix/log
mkdir -p "$state" "$log"
agent measure --root /sysroot --cmdline /proc/cmdline --state-dir "$state" \
  || fail "measure"
agent enroll --state-dir "$state" \
  --event-log /sys/kernel/security/tpm0/binary_bios_measurements || fail "enroll"
agent record --state-dir "$state" --log-dir "$log" --store-root /sysroot \
  --drv "$(cat /etc/provenix-drv)" \
  --nix-config "$(printf 'sandbox = true\nsandbox-fallback = false\nbuilders = \ntrusted-users = root\n')" \
  || fail "record"
echo "=== PROVENIX-AGENT-BEGIN"
tar czf - -C /run/provenix state log | base64
echo "=== PROVENIX-AGENT-END"
echo "=== PROVENIX-AGENT-OK"
