#!/usr/bin/env bash
# run-cgroup-v2.sh [BUILD_DIR] — sbx's cgroup v2 lane: boots Debian's kernel under qemu with
# a pure cgroup v2 hierarchy (cgroup_no_v1=all) and runs sbx's cgroup tests of BUILD_DIR
# (default: build) inside it. Its exit status is the tests' (see docs/testing.md).
#
# Host side: installs qemu-system-x86, busybox-static and cpio when missing; fetches the
# kernel package with `apt-get download` (never installed) and keeps what it needs in
# $SBX_VM_CACHE (default /tmp/sbx-vm-cache): the uncompressed kernel (vmlinux, booted
# through its PVH entry: no decompressor to run under emulation) and the 9p modules; builds
# the initramfs (static busybox, tests/vm/guest-init.sh as /init, the modules). The guest
# gets the host's / read-only and BUILD_DIR read-write over 9p, and runs
# tests/vm/cgroup-v2-tests.sh; the console goes to BUILD_DIR/vm-cgroup-v2/console.log.
#
# Environment: SBX_VM_CACHE (cache dir), SBX_VM_KERNEL (a linux-image-* package to use
# instead of what linux-image-amd64 depends on), SBX_VM_ACCEL (tcg or kvm; default kvm only
# where /proc/cpuinfo has vmx/svm and /dev/kvm is usable), SBX_VM_TIMEOUT (seconds for the
# boot and the tests, default 150), SBX_VM_MEM (MiB, default 1024), SBX_VM_SMP (default 2).
# Exit status: the tests' (0 = all passed), 2 = set-up failed on the host, 124 = timed out,
# 125 = set-up failed in the guest, 126 = no status came back from the guest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(realpath -m "${1:-$SRC/build}")
CACHE=${SBX_VM_CACHE:-/tmp/sbx-vm-cache}
TIMEOUT=${SBX_VM_TIMEOUT:-150}
MEM=${SBX_VM_MEM:-1024}
SMP=${SBX_VM_SMP:-2}
OUT=$BUILD/vm-cgroup-v2
MODULES="9pnet_virtio virtio_pci 9p" # with their dependencies

log() { echo "== vm-cgroup-v2: $*" >&2; }
die() {
	echo "vm-cgroup-v2: FAILED: $*" >&2
	exit 2
}
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

case "$BUILD$SRC" in *[[:space:]]*) die "paths with spaces are not supported: $BUILD, $SRC";; esac
for b in sbx sbx-agent test_escape test_tools; do
	[ -x "$BUILD/bin/$b" ] || die "$BUILD/bin/$b is missing: build first (scripts/build.sh $BUILD)"
done

# --- host packages -------------------------------------------------------------------------
packages() {
	local need=()
	command -v qemu-system-x86_64 > /dev/null || need+=(qemu-system-x86)
	[ -x /bin/busybox ] && dpkg -s busybox-static > /dev/null 2>&1 || need+=(busybox-static)
	command -v cpio > /dev/null || need+=(cpio)
	command -v xz > /dev/null || need+=(xz-utils)
	command -v zstd > /dev/null || need+=(zstd)
	if [ ${#need[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "missing packages: ${need[*]} (run as root to install them)"
		log "apt-get install ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null ||
			die "apt-get install ${need[*]} failed"
	fi
	# No silent skip: without qemu the lane fails.
	command -v qemu-system-x86_64 > /dev/null || die "qemu-system-x86_64 is not there after installing qemu-system-x86"
	qemu-system-x86_64 --version > /dev/null || die "qemu-system-x86_64 does not run"
	dpkg -s busybox-static > /dev/null 2>&1 && [ -x /bin/busybox ] ||
		die "/bin/busybox (busybox-static: the guest's /init needs it static) is not there"
}

# --- the kernel: a Debian package, unpacked, never installed ---------------------------------
modpath() { # module name -> its path under the unpacked modules, from modules.order or a find
	local n=${1//-/_}
	awk -v n="$n" '{ f = $0; sub(/.*\//, "", f); sub(/\.ko.*/, "", f); gsub(/-/, "_", f);
		if (f == n) { print; exit } }' "$KTMP/modlist"
}
modcat() { case $1 in *.xz) xz -dc "$1";; *.zst) zstd -dcq "$1";; *) cat "$1";; esac; }
modclosure() { # appends MODULE's dependencies, then MODULE, to ORDER
	local m=${1//-/_} p d
	case " $SEEN " in *" $m "*) return 0;; esac
	SEEN="$SEEN $m"
	p=$(modpath "$m")
	if [ -z "$p" ]; then
		sed 's|.*/||; s|\.ko.*||; s|-|_|g' "$KTMP/mods/modules.builtin" | grep -qx "$m" && return 0
		die "kernel module $m is neither a module nor built in"
	fi
	for d in $(modcat "$KTMP/mods/$p" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr , ' '); do
		modclosure "$d"
	done
	modcat "$KTMP/mods/$p" > "$KDIR/modules/$m.ko"
	ORDER="$ORDER $m.ko"
}
kernel() {
	local pkg=${SBX_VM_KERNEL:-}
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-amd64 2> /dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
		if [ -z "$pkg" ]; then
			apt-get update -qq || true
			pkg=$(apt-cache depends linux-image-amd64 2> /dev/null |
				awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
		fi
		[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package"
	fi
	KDIR=$CACHE/kernel-$pkg
	if [ -s "$KDIR/vmlinux" ] && [ -s "$KDIR/modules.load" ]; then
		log "kernel $pkg (cached)"
		return 0
	fi
	log "kernel: apt-get download $pkg"
	KTMP=$CACHE/unpack
	rm -rf "$KTMP" "$KDIR"
	mkdir -p "$KTMP/deb" "$KDIR/modules"
	(cd "$KTMP/deb" && apt-get download -q "$pkg" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' -e '^Fetched' >&2) || true
	local deb
	deb=$(ls "$KTMP/deb/${pkg}_"*.deb 2> /dev/null | head -1)
	[ -n "$deb" ] || die "apt-get download $pkg failed"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KTMP" --wildcards './boot/vmlinuz-*' './lib/modules/*' ||
		die "unpacking $deb failed"
	mv "$KTMP"/lib/modules/* "$KTMP/mods"
	(cd "$KTMP/mods" && find . -name '*.ko*' | sed 's|^\./||') > "$KTMP/modlist"
	# vmlinux is the bzImage's compressed payload: an ELF with a PVH note that qemu boots
	# directly, which skips the decompressor (2 s under TCG for an xz kernel)
	local vmlinuz off
	vmlinuz=$(ls "$KTMP"/boot/vmlinuz-* | head -1)
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1 || true)
	if [ -n "$off" ]; then
		tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > "$KDIR/vmlinux" 2> /dev/null || true
	else
		off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$vmlinuz" | head -1 | cut -d: -f1 || true)
		[ -n "$off" ] || die "the payload of $vmlinuz is neither xz nor zstd"
		tail -c +$((off + 1)) "$vmlinuz" | zstd -dcq 2> /dev/null > "$KDIR/vmlinux" || true
	fi
	[ "$(head -c 4 "$KDIR/vmlinux" | od -An -c | tr -d ' ')" = 177ELF ] ||
		die "could not extract vmlinux from $vmlinuz"
	SEEN= ORDER=
	for m in $MODULES; do modclosure "$m"; done
	echo "$ORDER" | tr ' ' '\n' | sed '/^$/d' > "$KDIR/modules.load"
	echo "$pkg ($(basename "$deb"))" > "$KDIR/package"
	rm -rf "$KTMP" # the unpacked modules: 430 MB for 6.1
}

# --- initramfs: busybox, /init, the modules --------------------------------------------------
initramfs() {
	INITRD=$KDIR/initrd.cpio.gz
	local stamp r
	stamp=$(cat "$HERE/guest-init.sh" /bin/busybox "$KDIR/modules.load" | md5sum | cut -c1-16)
	[ -s "$INITRD" ] && [ "$(cat "$KDIR/initrd.stamp" 2> /dev/null)" = "$stamp" ] && return 0
	r=$KDIR/initrd.d
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,proc,sys,dev,tmp,modules}
	cp /bin/busybox "$r/bin/busybox"
	cp "$HERE/guest-init.sh" "$r/init"
	chmod 755 "$r/init"
	cp "$KDIR"/modules/*.ko "$r/modules/"
	cp "$KDIR/modules.load" "$r/modules.load"
	(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$INITRD"
	rm -rf "$r"
	echo "$stamp" > "$KDIR/initrd.stamp"
}

accel() {
	local a=${SBX_VM_ACCEL:-}
	if [ -z "$a" ]; then
		# KVM where the CPU has VT-x/AMD-V; elsewhere (e.g. kvm_pvm, which runs a stock kernel
		# through its instruction emulator, far slower than TCG and incomplete) emulation.
		if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then a=kvm; else a=tcg; fi
	fi
	case $a in
	kvm) ACCEL=(-accel kvm -cpu host);;
	tcg) ACCEL=(-accel tcg,thread=multi -cpu max);;
	*) die "SBX_VM_ACCEL must be tcg or kvm";;
	esac
	ACCEL_NAME=$a
}

# --- the boot ----------------------------------------------------------------------------
T0=$(now)
mkdir -p "$CACHE"
packages
T_PKG=$(now)
kernel
initramfs
accel
T_SETUP=$(now)
rm -rf "$OUT"
mkdir -p "$OUT"
CONSOLE=$OUT/console.log
cmd=(qemu-system-x86_64 "${ACCEL[@]}" -smp "$SMP" -m "$MEM"
	-nodefaults -no-user-config -nographic -no-reboot -serial stdio
	-kernel "$KDIR/vmlinux" -initrd "$INITRD"
	-append "cgroup_no_v1=all console=ttyS0 panic=-1 quiet sbxvm.run=$HERE/cgroup-v2-tests.sh sbxvm.build=$BUILD"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot"
	-virtfs "local,path=$BUILD,mount_tag=build,security_model=none,multidevs=remap,id=build")
echo "${cmd[*]}" > "$OUT/qemu-cmd"
log "booting $(cat "$KDIR/package") under qemu ($ACCEL_NAME, ${SMP} cpus, ${MEM} MiB), cgroup_no_v1=all"
rc=126 qrc= T_RUN= line= seen=
while IFS= read -r line; do
	line=${line%$'\r'}
	printf '%s\n' "$line" >> "$CONSOLE"
	case $line in
	*"SBXVM kernel "*) seen=1; line="SBXVM kernel ${line#*SBXVM kernel }";;
	"SBXVM host / mounted"*) T_RUN=$(now);;
	"SBXVM EXIT="*) rc=${line#SBXVM EXIT=};;
	"SBXVM-QEMU-RC="*) qrc=${line#SBXVM-QEMU-RC=}; continue;;
	esac
	# the guest's lines and the runner's output; the firmware's and the kernel's only in
	# console.log, but for the reports that matter and qemu's own errors
	case $line in
	*"Kernel panic"*|*"BUG:"*|*"Oops"*|*"Killed process"*|qemu-system*|timeout:*) echo "   $line";;
	*) if [ -n "$seen" ] && ! [[ $line =~ ^\[\ *[0-9]+\.[0-9]+\] ]]; then echo "   $line"; fi;;
	esac
done < <(q=0; timeout -k 5 "$TIMEOUT" "${cmd[@]}" < /dev/null 2>&1 || q=$?; echo "SBXVM-QEMU-RC=$q")
T_END=$(now)
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log "timed out after ${TIMEOUT}s"
	rc=124
elif [ "$rc" = 126 ]; then
	log "no exit status came back from the guest (qemu exited with $qrc): see $CONSOLE"
fi
grc=$(cat "$OUT/guest.rc" 2> /dev/null || echo missing)
if [ "$rc" != 124 ] && [ "$rc" != 125 ] && [ "$rc" != 126 ] && [ "$grc" != "$rc" ]; then
	log "the status in $OUT/guest.rc ($grc) is not the console's ($rc)"
	rc=126
fi
log "timing: packages $(since "$T0" "$T_PKG")s, kernel+initramfs $(since "$T_PKG" "$T_SETUP")s," \
	"boot to tests $(since "$T_SETUP" "${T_RUN:-$T_END}")s, tests+power-off $(since "${T_RUN:-$T_END}" "$T_END")s," \
	"total $(since "$T0" "$T_END")s"
if [ "$rc" = 0 ]; then
	log "PASSED (pure cgroup v2, kernel $(cat "$KDIR/package"))"
else
	log "FAILED with status $rc (console: $CONSOLE, runner output: $OUT/guest.log)"
fi
exit "$rc"
