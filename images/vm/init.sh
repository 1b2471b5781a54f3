#!/bin/busybox sh
# Guest /init (busybox): reads the firmware event log and every PCR bank the
# kernel exposes, prints them on the console between markers, powers off.
# The host side (extract.sh) turns the markers back into files.
# mkinitramfs.sh links every busybox applet into /bin.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t securityfs securityfs /sys/kernel/security

log=/sys/kernel/security/tpm0/binary_bios_measurements
i=0
while [ ! -r "$log" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

# Kernel messages could land between our lines: keep them off the console.
echo 1 >/proc/sys/kernel/printk

if [ -r "$log" ]; then
  cp "$log" /tmp/eventlog.bin
  echo "=== PROVENIX-EVENTLOG-BEGIN"
  base64 /tmp/eventlog.bin
  echo "=== PROVENIX-EVENTLOG-END sha256=$(sha256sum /tmp/eventlog.bin | cut -d' ' -f1)"
else
  echo "=== PROVENIX-ERROR no event log at $log"
fi

echo "=== PROVENIX-PCRS-BEGIN"
for dir in /sys/class/tpm/tpm0/pcr-*; do
  [ -d "$dir" ] || continue
  bank=${dir##*/pcr-}
  n=0
  while [ $n -le 23 ]; do
    echo "$bank $n $(cat "$dir/$n")"
    n=$((n + 1))
  done
done
echo "=== PROVENIX-PCRS-END"

# Scenario hooks (the images issue adds its own) run here, before power-off.
for hook in /etc/provenix-vm.d/*; do
  [ -x "$hook" ] && "$hook"
done

sync
poweroff -f
