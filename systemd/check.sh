#!/usr/bin/env bash
# Checks systemd/reminderd.service: that it sets MemoryMax= and a LimitNOFILE= above twice the
# shipped server.max_connections; then, where systemd-analyze exists:
#   1. `systemd-analyze verify` on a temporary copy of the unit whose ExecStart points at an
#      existing reminderd binary ($1; default target/release/reminderd, else target/debug/reminderd);
#   2. `systemd-analyze security --offline=yes` on the unit itself, failing if the exposure
#      is above 1.5.
# Without systemd-analyze it prints "skipped: systemd-analyze not found" and exits 0.
#
# Usage: systemd/check.sh [PATH-TO-REMINDERD-BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."

max_exposure=1.5
unit=systemd/reminderd.service

# ---- limits (needs nothing but the files) --------------------------------------------------
# A runaway is contained (MemoryMax), and every connection the shipped config allows can be
# opened: LimitNOFILE above twice server.max_connections.
grep -qE '^MemoryMax=[0-9]+[KMG]?$' "$unit" || { echo "FAIL: $unit has no MemoryMax=" >&2; exit 1; }
nofile=$(sed -nE 's/^LimitNOFILE=([0-9]+)$/\1/p' "$unit")
conns=$(sed -nE 's/^max_connections = ([0-9]+)$/\1/p' reminders.toml)
if [[ -z $nofile || -z $conns || $nofile -le $((2 * conns)) ]]; then
    echo "FAIL: LimitNOFILE=${nofile:-unset} must be above twice server.max_connections (${conns:-unset})" >&2
    exit 1
fi
echo "limits: MemoryMax set; LimitNOFILE=$nofile > 2 x max_connections=$conns"

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skipped: systemd-analyze not found"
    exit 0
fi

# ---- verify -------------------------------------------------------------------------------
if [[ $# -ge 1 ]]; then
    bin=$1
elif [[ -x target/release/reminderd ]]; then
    bin=target/release/reminderd
elif [[ -x target/debug/reminderd ]]; then
    bin=target/debug/reminderd
else
    echo "no reminderd binary to verify the unit with: run 'cargo build --release' or pass its path" >&2
    exit 1
fi
if [[ ! -x $bin ]]; then
    echo "$bin: not an executable file" >&2
    exit 1
fi
bin=$(realpath "$bin")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Same file name, so that verify sees the same unit; only the binary's path differs.
sed "s|/usr/local/bin/reminderd|$bin|g" "$unit" >"$tmp/reminderd.service"
if [[ ! -x /bin/kill ]]; then
    # /bin/kill comes with procps, which minimal images lack; it is on every real host.
    echo "note: /bin/kill not found here; verifying with ExecReload pointed at $(command -v true)"
    sed -i "s|^ExecReload=/bin/kill |ExecReload=$(command -v true) |" "$tmp/reminderd.service"
fi

echo "\$ systemd-analyze verify $unit   (ExecStart=$bin)"
# verify exits 0 on an unknown key or a bad value (it ignores the line), so any message about
# this unit counts as a failure too; messages about other units on the host do not.
rc=0
verify_out=$(systemd-analyze verify "$tmp/reminderd.service" 2>&1) || rc=$?
[[ -n $verify_out ]] && printf '%s\n' "$verify_out"
if [[ $rc -ne 0 ]] || grep -q 'reminderd\.service' <<<"$verify_out"; then
    echo "FAIL: systemd-analyze verify found problems in $unit" >&2
    exit 1
fi
echo "verify: OK"

# ---- security -----------------------------------------------------------------------------
echo "\$ systemd-analyze security --offline=yes $unit"
if ! out=$(systemd-analyze security --offline=yes "$unit" 2>&1); then
    if grep -qiE "unrecognized option|unknown option" <<<"$out"; then
        echo "skipped security check: this systemd-analyze has no --offline (systemd 250 or later needed)"
        exit 0
    fi
    printf '%s\n' "$out" >&2
    echo "FAIL: systemd-analyze security did not run" >&2
    exit 1
fi
# Only the findings that cost something, then the verdict.
grep -E '^✗' <<<"$out" || true
verdict=$(grep -E 'Overall exposure level' <<<"$out" | tail -n 1)
echo "$verdict"
score=$(sed -nE 's/.*Overall exposure level for [^:]+: ([0-9]+(\.[0-9]+)?).*/\1/p' <<<"$verdict")
if [[ -z $score ]]; then
    printf '%s\n' "$out" >&2
    echo "FAIL: could not read the exposure level" >&2
    exit 1
fi
if awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s > m) }'; then
    echo "FAIL: exposure $score is above $max_exposure" >&2
    exit 1
fi
echo "security: OK (exposure $score <= $max_exposure)"
