#!/usr/bin/env bash
# cgroup-v2-tests.sh BUILD_DIR — the part of the cgroup v2 lane that runs inside the guest
# (started by tests/vm/guest-init.sh, with the host's / read-only as its root, in the leaf
# cgroup /ci/runner of a pure cgroup v2 hierarchy). Runs the Criterion tests that set
# memory, pids and CPU limits, and a CLI probe that reads the limits back from the session's
# v2 cgroup. Exits 0 only if every expected test passed: a skipped test (e.g. "cgroup limit
# not enforceable here") is a failure here, since on this kernel every limit must be
# enforceable through cgroup v2.
set -u
B=${1:?usage: cgroup-v2-tests.sh BUILD_DIR}
CG=/sys/fs/cgroup
status=0
export TMPDIR=/tmp

say() { echo "== $*"; }
bad() {
	echo "FAIL: $*"
	status=1
}

self=$(sed -n 's/^0:://p' /proc/self/cgroup)
say "runner: pid $$, /proc/self/cgroup: $(tr '\n' ' ' < /proc/self/cgroup)"
say "runner cgroup $self: controllers '$(cat "$CG$self/cgroup.controllers")';" \
	"parent subtree_control '$(cat "$CG${self%/*}/cgroup.subtree_control")'"
[ "$(wc -l < /proc/self/cgroup)" = 1 ] || bad "the runner is in v1 hierarchies too"
[ -n "$self" ] && [ "$self" != / ] || bad "the runner is in the root cgroup: the lane must run it below"
"$B/bin/sbx" doctor > /tmp/doctor.out 2>&1
grep -E '^(OK|WARN|FAIL) +cgroup' /tmp/doctor.out
grep -q 'layout: cgroup v2' /tmp/doctor.out || bad "sbx doctor does not see a pure cgroup v2 layout"

# crit NAME BINARY FILTER EXPECTED: runs one Criterion selection, shows its results (not the
# tests the filter disabled) and checks that EXPECTED tests ran and passed, none skipped.
crit() {
	local name=$1 bin=$2 filter=$3 want=$4 log=/tmp/$1.log t0=$SECONDS
	say "$name: $(basename "$bin") --filter '$filter'"
	"$bin" --jobs 2 --verbose --filter "$filter" > "$log" 2>&1
	local rc=$?
	grep -a -v -e 'Test is disabled' -e '^\[----\] Criterion' -e '^\[====\] Running' "$log" |
		grep -a -E '^\[(PASS|FAIL|SKIP|----|====)\]|CRASH|Assertion'
	local passing
	passing=$(sed -n 's/.*Synthesis: Tested: [0-9]* | Passing: \([0-9]*\) .*/\1/p' "$log" | tail -1)
	say "$name: exit $rc, $passing of $want passed in $((SECONDS - t0))s"
	[ "$rc" = 0 ] || bad "$name: the test binary exited with $rc"
	[ "${passing:-0}" = "$want" ] || bad "$name: ${passing:-0} tests passed, $want expected"
	if grep -a '^\[SKIP\]' "$log" | grep -a -v 'Test is disabled' | grep -q .; then
		bad "$name: tests were skipped (limits must be enforceable on a pure v2 kernel)"
	fi
}

# A session made with the CLI: its agent must be in one v2 cgroup only, sbx-<id> below
# SBX_CGROUP_PARENT, with the limits written there, and the cgroup must go with it.
probe() {
	say "cli probe: sbx create --memory 64M --pids 30 --cpus 0.5"
	export SBX_STATE_DIR=/tmp/sbx-vm-state
	local id pid cg dir
	id=$(timeout 60 "$B/bin/sbx" create --memory 64M --pids 30 --cpus 0.5) ||
		{ bad "cli probe: sbx create failed: $id"; return; }
	pid=$(sed -n 's/.*"agent_pid": *"\{0,1\}\([0-9]*\).*/\1/p' "$SBX_STATE_DIR/$id/session.json")
	echo "agent $pid: /proc/$pid/cgroup: $(tr '\n' ' ' < "/proc/$pid/cgroup")"
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
	dir=$CG$cg
	[ "$(wc -l < "/proc/$pid/cgroup")" = 1 ] || bad "cli probe: the agent is in v1 hierarchies"
	case $cg in "$SBX_CGROUP_PARENT"/sbx-"$id") ;; *) bad "cli probe: the agent's cgroup $cg is not $SBX_CGROUP_PARENT/sbx-$id";; esac
	echo "$dir: memory.max=$(cat "$dir/memory.max") pids.max=$(cat "$dir/pids.max")" \
		"cpu.max='$(cat "$dir/cpu.max")' memory.swap.max=$(cat "$dir/memory.swap.max" 2>/dev/null)"
	[ "$(cat "$dir/memory.max")" = 67108864 ] || bad "cli probe: memory.max"
	[ "$(cat "$dir/pids.max")" = 30 ] || bad "cli probe: pids.max"
	[ "$(cat "$dir/cpu.max")" = "50000 100000" ] || bad "cli probe: cpu.max"
	timeout 60 "$B/bin/sbx" exec "$id" -- sh -c "exec python3 -c 'b = bytearray(256 << 20)'"
	local rc=$?
	echo "a 256 MiB hog: exit $rc; memory.events: $(tr '\n' ' ' < "$dir/memory.events")"
	[ "$rc" = 137 ] || bad "cli probe: the hog was not OOM-killed (exit $rc)"
	grep -q '^oom_kill [1-9]' "$dir/memory.events" || bad "cli probe: no oom_kill in memory.events"
	timeout 60 "$B/bin/sbx" rm -f "$id" > /dev/null || bad "cli probe: sbx rm failed"
	[ ! -e "$dir" ] || bad "cli probe: $dir is left after sbx rm"
}

# sbx alone in a cgroup of its own (a service or scope): it moves itself into the leaf
# sbx-host below it and makes the session cgroup beside that, inside its own subtree.
solo_probe() {
	say "solo probe: sbx run --memory 64M alone in /ci/solo"
	local dir=$CG/ci/solo out rc
	mkdir "$dir" || { bad "solo probe: mkdir $dir"; return; }
	out=$(env -u SBX_CGROUP_PARENT timeout 60 sh -c \
		"echo \$\$ > $dir/cgroup.procs && exec $B/bin/sbx run --memory 64M -- cat /proc/self/cgroup" 2>&1)
	rc=$?
	echo "exit $rc: $out; below $dir: $(cd "$dir" && ls -d sbx-* 2>/dev/null | tr '\n' ' ')"
	[ "$rc" = 0 ] || bad "solo probe: sbx run failed"
	[ -d "$dir/sbx-host" ] || bad "solo probe: sbx did not move itself into $dir/sbx-host"
	rmdir "$dir/sbx-host" "$dir" 2>/dev/null || bad "solo probe: $dir is not empty after the run"
}

# sbx sharing its cgroup with other processes and no SBX_CGROUP_PARENT: a limit cannot be
# enforced, and sbx must refuse to run rather than run without it.
shared_probe() {
	say "shared probe: sbx run --memory 64M in /ci/runner, shared, without SBX_CGROUP_PARENT"
	local out rc
	out=$(env -u SBX_CGROUP_PARENT timeout 60 "$B/bin/sbx" run --memory 64M -- true 2>&1)
	rc=$?
	echo "exit $rc: $out"
	[ "$rc" = 125 ] || bad "shared probe: expected a refusal (125), got $rc"
	case $out in *SBX_CGROUP_PARENT*) ;; *) bad "shared probe: the error does not name the fix";; esac
}

t0=$SECONDS
solo_probe
shared_probe
# The runner shares /ci/runner with the tests: sessions go below a delegated, empty cgroup.
mkdir -p $CG/ci/sessions
export SBX_CGROUP_PARENT=/ci/sessions
say "SBX_CGROUP_PARENT=$SBX_CGROUP_PARENT (controllers '$(cat $CG/ci/sessions/cgroup.controllers)')"
probe
# All but disk_bandwidth_*: the guest's directories are tmpfs and 9p, no block device to
# throttle (it runs on the host, on v1 blkio).
crit escape_cgroups "$B/bin/test_escape" 'escape_cgroups/[!d]*' 11
crit cli_limits "$B/bin/test_tools" 'tools_cli_session/limits_given_at_create' 1
crit doctor_layout "$B/bin/test_tools" 'tools_doctor/text_report_names_the_cgroup_layout' 1
rmdir $CG/ci/sessions || bad "$CG/ci/sessions is not empty"
left=$(find $CG -name 'sbx*' 2>/dev/null)
[ -z "$left" ] || bad "session cgroups left behind: $left"
say "guest tests took $((SECONDS - t0))s; $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
