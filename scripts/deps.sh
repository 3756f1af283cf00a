#!/usr/bin/env bash
# Installs the Debian packages sbx needs to build and test (run as root on Debian 12).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libseccomp-dev libcap-dev libarchive-dev libnl-3-dev
      libnl-route-3-dev libjson-c-dev libssl-dev
      liblz4-dev libzstd-dev libacl1-dev nettle-dev zlib1g-dev libbz2-dev liblzma-dev libcriterion-dev python3 iproute2 util-linux bubblewrap tmux
      qemu-system-x86 busybox-static cpio xz-utils zstd e2fsprogs)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "sbx: missing packages: ${missing[*]} (run this script as root to install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
