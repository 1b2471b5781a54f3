#!/usr/bin/env bash
# mkesp.sh ESP_IMG EFI_APP
#
# Writes a raw GPT disk image ESP_IMG holding one EFI System Partition (FAT,
# 1 MiB in, sized for the app) with EFI_APP as \EFI\BOOT\BOOTX64.EFI, the
# path firmware boots from removable media without any boot entry.
# The disk and partition GUIDs are fixed (override with ESP_DISK_GUID and
# ESP_PART_GUID): the firmware measures the GPT header and entries into
# PCR 5 (EV_EFI_GPT_EVENT), so fixed GUIDs make PCR 5 predictable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: mkesp.sh ESP_IMG EFI_APP"
img=$1 app=$2
disk_guid=${ESP_DISK_GUID:-50524f56-454e-4958-8000-000000000000}
part_guid=${ESP_PART_GUID:-50524f56-454e-4958-8000-000000000001}
esp_type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B

need_cmd sfdisk fdisk
need_cmd mkfs.vfat dosfstools
need_cmd mcopy mtools
need_cmd mmd mtools
[ -f "$app" ] || die "no EFI application $app"

# Partition: the app plus a quarter and 16 MiB of room, in whole MiB.
app_bytes=$(stat -c %s "$app")
part_mib=$((app_bytes * 5 / 4 / 1048576 + 16))
part_sectors=$((part_mib * 2048))
# 1 MiB before the partition (protective MBR, GPT), 1 MiB after (backup GPT).
rm -f "$img"
truncate -s $(((part_mib + 2) * 1048576)) "$img"
sfdisk --quiet --no-reread --no-tell-kernel "$img" <<EOF
label: gpt
label-id: $disk_guid
unit: sectors
first-lba: 2048
start=2048, size=$part_sectors, type=$esp_type, uuid=$part_guid, name="EFI System Partition"
EOF

# The filesystem is made in its own file, filled, then written into place.
fat=$img.fat.tmp
rm -f "$fat"
mkfs.vfat --invariant -i 50524f56 -n ESP -C "$fat" $((part_sectors / 2)) >/dev/null
export MTOOLS_SKIP_CHECK=1
# mtools takes file and directory times from here: reproducible bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-946684800}
mmd -i "$fat" ::/EFI ::/EFI/BOOT
mcopy -i "$fat" "$app" ::/EFI/BOOT/BOOTX64.EFI
dd if="$fat" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$fat"
