#!/bin/busybox sh
# /init of the cgroup v2 lane's initramfs (tests/vm/run-cgroup-v2.sh packs it with a static
# busybox and the 9p modules of the guest kernel). It runs as pid 1 in the guest:
#
#   1. mounts /proc, /sys, /dev, /tmp and loads the modules listed in /modules.load;
#   2. mounts cgroup2 at /sys/fs/cgroup and checks the hierarchy is pure v2: the mount is
#      cgroup2, no v1 hierarchy is mounted, and none can be (cgroup_no_v1=all); it stops
#      with status 125 otherwise;
#   3. builds the cgroup tree the tests run in, as a delegating supervisor would:
#        /            subtree_control: memory pids cpu io cpuset
#        /ci          subtree_control: memory pids cpu io cpuset (the lane's delegated group)
#        /ci/runner   the test runner's own cgroup (a leaf: it holds processes)
#   4. mounts the host's / read-only over 9p (tag hostroot) and the build directory
#      read-write at the same path (tag build), with fresh /proc /sys /dev /tmp /run;
#   5. runs sbxvm.run (a script of the host) with sbxvm.build as its argument, in /ci/runner,
#      with the host's / as its root; its output goes to the console and to
#      BUILD/vm-cgroup-v2/guest.log, its status to BUILD/vm-cgroup-v2/guest.rc;
#   6. prints "SBXVM EXIT=<status>" and powers off.
# Lines of its own start with "SBXVM ". Kernel command line keys: sbxvm.run=PATH,
# sbxvm.build=DIR (no spaces in either).
export PATH=/bin:/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp

say() { echo "SBXVM $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
finish() {
	say "EXIT=$1"
	sync
	poweroff -f
	sleep 10
}
fail() {
	say "guest set-up failed: $*"
	finish 125
}
arg() { # value of sbxvm.$1= on the kernel command line
	for w in $(cat /proc/cmdline); do
		case "$w" in "sbxvm.$1="*) echo "${w#*=}"; return 0;; esac
	done
	return 1
}
say "kernel $(uname -r) at /init after $(up)s: $(nproc) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"

for m in $(cat /modules.load); do
	insmod "/modules/$m" || fail "insmod $m"
done

# --- a pure cgroup v2 hierarchy ---------------------------------------------------------
CG=/sys/fs/cgroup
mount -t cgroup2 -o nsdelegate cgroup2 $CG || fail "mount cgroup2 at $CG"
[ "$(stat -f -c %t $CG)" = 63677270 ] || fail "$CG is not a cgroup2 file system"
grep -qw cgroup_no_v1=all /proc/cmdline || fail "cgroup_no_v1=all is not on the kernel command line"
v1=$(awk '$3 == "cgroup" {print $2 " (" $4 ")"}' /proc/mounts)
[ -z "$v1" ] || fail "cgroup v1 hierarchies are mounted: $v1"
mkdir -p /tmp/v1
for c in memory pids cpu; do
	if mount -t cgroup -o $c none /tmp/v1 2>/dev/null; then
		umount /tmp/v1
		fail "a v1 $c hierarchy can still be mounted"
	fi
done
say "pure cgroup v2: $CG is cgroup2 (magic 0x$(stat -f -c %t $CG)), no v1 hierarchy mounted," \
	"v1 memory/pids/cpu cannot be mounted (cgroup_no_v1=all);" \
	"root controllers: $(cat $CG/cgroup.controllers)"

CTRL="+memory +pids +cpu +io +cpuset"
echo "$CTRL" > $CG/cgroup.subtree_control || fail "enabling $CTRL at the root"
mkdir $CG/ci || fail "mkdir $CG/ci"
echo "$CTRL" > $CG/ci/cgroup.subtree_control || fail "enabling $CTRL in /ci"
mkdir $CG/ci/runner || fail "mkdir $CG/ci/runner"
say "cgroup tree: / and /ci delegate '$(cat $CG/ci/cgroup.subtree_control)';" \
	"the runner goes in /ci/runner (controllers '$(cat $CG/ci/runner/cgroup.controllers)')"

# --- the host's / as the runner's root, the build directory writable ---------------------
RUN=$(arg run) || fail "no sbxvm.run= on the kernel command line"
BUILD=$(arg build) || fail "no sbxvm.build= on the kernel command line"
R=/newroot
P9="trans=virtio,version=9p2000.L,msize=524288"
mkdir -p $R
mount -t 9p -o $P9,ro,cache=loose hostroot $R || fail "mount 9p hostroot"
mount -t proc proc $R/proc || fail "proc in the new root"
mount -t sysfs sys $R/sys || fail "sysfs in the new root"
mount -t cgroup2 -o nsdelegate cgroup2 $R$CG || fail "cgroup2 in the new root"
mount -t devtmpfs dev $R/dev || fail "devtmpfs in the new root"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts || fail "devpts in the new root"
mount -t tmpfs shm $R/dev/shm || fail "/dev/shm in the new root"
# A source tree below one of the directories that get a tmpfs (a clone in /root or /tmp, say)
# would be hidden by it: keep a view of it aside first, and put it back on top.
src=${RUN%/tests/vm/*}
mkdir -p /keep
mount -o bind "$R$src" /keep || fail "bind $src aside"
for d in /tmp /run /var/tmp /root; do
	[ -d $R$d ] && { mount -t tmpfs tmp $R$d || fail "tmpfs at $d"; }
done
chmod 1777 $R/tmp $R/var/tmp
if [ ! -e "$R$RUN" ]; then
	mkdir -p "$R$src" || fail "mkdir $src"
	mount -o bind /keep "$R$src" || fail "bind $src back"
fi
[ -d "$R$BUILD" ] || mkdir -p "$R$BUILD" || fail "mkdir $BUILD"
mount -t 9p -o $P9 build $R$BUILD || fail "mount 9p build at $BUILD"
OUT=$BUILD/vm-cgroup-v2
mkdir -p $R$OUT || fail "mkdir $OUT"
say "host / mounted read-only over 9p, $BUILD read-write; running $RUN at $(up)s"

# The kernel's defaults for pid 1 are low (the hard process limit is about 3800 with 1 GiB,
# below the 4096 sbx gives its commands, which then fail with "rlimit"): give the runner what
# a systemd host gives its services.
ulimit -u unlimited || fail "ulimit -u"
ulimit -n 524288 || fail "ulimit -n"

# In /ci/runner, in a private mount namespace where the new root is moved onto / and
# chrooted to (what switch_root does): a plain chroot would make the kernel refuse user
# namespaces to the tests (EPERM). init itself stays in the initramfs to power off.
{
	sh -c 'echo $$ > /sys/fs/cgroup/ci/runner/cgroup.procs &&
		cd "$0" && exec unshare -m sh -c "mount --move . / && exec chroot . \"\$0\" \"\$1\"" "$1" "$2"' \
		$R "$RUN" "$BUILD" 2>&1
	echo $? > /tmp/rc
} | tee $R$OUT/guest.log
rc=$(cat /tmp/rc 2>/dev/null || echo 125)
echo "$rc" > $R$OUT/guest.rc
say "runner done at $(up)s"
finish "$rc"
