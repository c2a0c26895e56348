#!/usr/bin/env bash
# The .deb's life cycle in a throwaway Debian 12 root, step by step, printing each check:
#   build two versions from a clean clone -> install -> upgrade with a job running ->
#   remove -> purge.
# The root is made with debootstrap (cached as a tarball under build/lifecycle-cache/) and
# booted with systemd-nspawn, so systemd is PID 1 in it: the unit really starts, the
# package's maintainer scripts really start, restart and stop it, and sysusers/tmpfiles
# really run.  Needs root, debootstrap and systemd-container (installed with apt when
# missing) and the network to Debian's and PyPI's package servers.
#
#   scripts/package_lifecycle.sh               # ~5-8 min; prints CHECK lines, exits 1 on the first failure
#   KEEP_ROOT=1 scripts/package_lifecycle.sh   # leave the root in build/lifecycle/root to look at
#
# Torch in the container: on machines whose pip finds torch 2.13.0's CPU wheel in /opt/wheels
# (this project's build boxes), HEYGEM_TORCH=cpu with that folder; elsewhere the package's
# default (PyPI's torch) unless HEYGEM_TORCH / HEYGEM_TORCH_PIP_OPTIONS are set by the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$REPO/build/lifecycle
CACHE=$REPO/build/lifecycle-cache
ROOT=$WORK/root
JOB="lifecycle job"
V1=0.1.0-1
V2=0.1.0-1+lifecycle2
# videos in the job that runs through the upgrade: ~5 s each here, so it outlasts the 1-2 min
# the upgrade takes to build its environment (both slow down alike when the machine is busy)
VIDEOS=40
started=$(date +%s)

passed=0
step() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - started ))"; }
check() { printf 'CHECK %-72s ok\n' "$1"; passed=$((passed + 1)); }
# the last line is the plain "N passed, N failed" that CI reads
fail() { printf 'CHECK %-72s FAILED\n%s\n\npackage_lifecycle: %d passed, 1 failed\n' "$1" "${2:-}" "$passed"; exit 1; }
expect() { # expect "what" command...: the command must succeed
  local what=$1; shift
  if out=$("$@" 2>&1); then check "$what"; else fail "$what" "$out"; fi
}

[ "$(id -u)" = 0 ] || { echo "package_lifecycle: run as root (debootstrap, systemd-nspawn)"; exit 1; }
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev debhelper)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

CT_PID=""
NSPAWN_PID=""
cleanup() {
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill "$NSPAWN_PID" 2>/dev/null || true          # SIGTERM: the container halts
    for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$NSPAWN_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_ROOT:-0}" != 1 ]; then rm -rf "$ROOT"; fi
}
trap cleanup EXIT

# in the container: systemd's namespaces, a clean environment (the torch settings pass through)
ct() {
  nsenter -t "$CT_PID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive ${HEYGEM_TORCH:+HEYGEM_TORCH="$HEYGEM_TORCH"} \
    ${HEYGEM_TORCH_PIP_OPTIONS:+HEYGEM_TORCH_PIP_OPTIONS="$HEYGEM_TORCH_PIP_OPTIONS"} "$@"
}
ct_sh() { ct sh -c "$1"; }
main_pid() { ct systemctl show -p MainPID --value heygem-daemon; }
journal_events() { # the daemon's JSON log lines in the journal, one event name a line
  ct_sh "journalctl -u heygem-daemon -o cat --no-pager" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    print(e.get("event"), json.dumps(e.get("running")) if "running" in e else "")'
}

step "build two versions of the .deb from a clean clone"
scripts/build-deb.sh "$WORK/deb1" >/dev/null
HEYGEM_DEB_VERSION=$V2 scripts/build-deb.sh "$WORK/deb2" >/dev/null
DEB1=$(ls "$WORK"/deb1/heygem-daemon_*_all.deb)
DEB2=$(ls "$WORK"/deb2/heygem-daemon_*_all.deb)
expect "built $(basename "$DEB1") and $(basename "$DEB2")" test -s "$DEB1" -a -s "$DEB2"
expect "daemon.toml is a conffile" sh -c "dpkg-deb -I '$DEB1' conffiles | grep -qx /etc/heygem/daemon.toml"

step "a throwaway Debian 12 root (debootstrap, cached) booted with systemd-nspawn"
mkdir -p "$CACHE"
if [ ! -s "$CACHE/bookworm.tar" ]; then
  rm -rf "$CACHE/base"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates,python3,python3-venv \
    bookworm "$CACHE/base" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
  # ffmpeg (a dependency of the package) is part of the cached root: the slow part of apt's work
  systemd-nspawn -q --register=no --keep-unit -D "$CACHE/base" sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null && apt-get clean' \
    >"$CACHE/ffmpeg.log" 2>&1 || { tail -20 "$CACHE/ffmpeg.log"; exit 1; }
  tar -C "$CACHE/base" -cf "$CACHE/bookworm.tar" .
  rm -rf "$CACHE/base"
fi
rm -rf "$ROOT"
mkdir -p "$ROOT" "$CACHE/pip"
tar -C "$ROOT" -xf "$CACHE/bookworm.tar"
mkdir -p "$ROOT/root/debs"
cp "$DEB1" "$DEB2" "$ROOT/root/debs/"
binds=(--bind="$CACHE/pip:/root/.cache/pip")
# this machine's pip and TLS set-up (a local wheel folder and index, the CAs it trusts for
# its egress proxy) goes in with it, as an admin's host would have its own
for f in /etc/pip.conf /root/.config/pip/pip.conf /etc/xdg/pip /usr/local/share/ca-certificates; do
  if [ -e "$f" ]; then mkdir -p "$ROOT$(dirname "$f")"; cp -r "$f" "$ROOT$f"; fi
done
for d in /opt/wheels /opt/pypi /opt/pypi-more; do
  if [ -d "$d" ]; then binds+=(--bind-ro="$d"); fi
done
if [ -z "${HEYGEM_TORCH:-}" ] && ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  export HEYGEM_TORCH=cpu HEYGEM_TORCH_PIP_OPTIONS="--find-links /opt/wheels"
fi
systemd-nspawn --register=no --keep-unit -q -b -D "$ROOT" --console=pipe "${binds[@]}" \
  >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 120); do
  CT_PID=$(ps -o pid= --ppid "$NSPAWN_PID" | head -1 | tr -d ' ' || true)
  if [ -n "$CT_PID" ] && state=$(ct systemctl is-system-running 2>/dev/null) && \
     { [ "$state" = running ] || [ "$state" = degraded ]; }; then break; fi
  sleep 0.5
done
ct update-ca-certificates >/dev/null 2>&1 || true
expect "systemd is PID 1 in the root ($(ct systemctl --version | head -1))" \
  sh -c "[ \"\$(nsenter -t $CT_PID -a cat /proc/1/comm)\" = systemd ]"

step "install $V1 (HEYGEM_TORCH=${HEYGEM_TORCH:-cuda})"
ct apt-get install -y -q /root/debs/"$(basename "$DEB1")" >"$WORK/install.log" 2>&1 \
  || fail "apt-get install" "$(tail -30 "$WORK/install.log")"
grep "heygem-daemon:" "$WORK/install.log" || true
expect "dpkg says installed $V1" sh -c "[ \"\$(nsenter -t $CT_PID -a dpkg-query -W -f='\${Status} \${Version}' heygem-daemon)\" = 'install ok installed $V1' ]"
expect "user heygem (sysusers)" ct getent passwd heygem
expect "/srv/heygem/inbox and outbox: 2775 heygem:heygem (tmpfiles)" sh -c \
  "[ \"\$(nsenter -t $CT_PID -a stat -c '%a %U:%G' /srv/heygem/inbox /srv/heygem/outbox | sort -u)\" = '2775 heygem:heygem' ]"
expect "/etc/heygem/daemon.toml: 640 root:heygem" sh -c \
  "[ \"\$(nsenter -t $CT_PID -a stat -c '%a %U:%G' /etc/heygem/daemon.toml)\" = '640 root:heygem' ]"
expect "torch in /opt/heygem/venv: $(ct /opt/heygem/venv/bin/python -c 'import torch; print(torch.__version__)')" \
  ct /opt/heygem/venv/bin/python -c 'import torch'
verify=$(ct systemd-analyze verify /lib/systemd/system/heygem-daemon.service 2>&1 || echo "exit $?")
[ -z "$verify" ] && check "systemd-analyze verify on the installed unit: no output" \
  || fail "systemd-analyze verify on the installed unit" "$verify"
expect "the unit is enabled" ct systemctl is-enabled heygem-daemon
for _ in $(seq 240); do
  [ "$(ct systemctl is-active heygem-daemon || true)" = active ] && break; sleep 0.5
done
expect "the unit is active (Type=notify: the daemon sent READY=1)" ct systemctl is-active heygem-daemon
PID1=$(main_pid)
expect "its main process is the installed program: $(ct cat /proc/"$PID1"/cmdline | tr '\0' ' ')" \
  sh -c "nsenter -t $CT_PID -a cat /proc/$PID1/cmdline | tr '\0' ' ' | grep -qx '/opt/heygem/venvs/[0-9a-f]*/bin/python3* /opt/heygem/venv/bin/heygem-daemon run --config /etc/heygem/daemon.toml '"
expect "it runs as heygem" sh -c "[ \"\$(nsenter -t $CT_PID -a stat -c %U /proc/$PID1)\" = heygem ]"

step "the admin edits the config; a job runs"
# a short stop grace, so that the upgrade's restart checkpoints the job instead of letting it finish
ct_sh "sed -i -e 's/^settle_seconds = 10.0/settle_seconds = 1.0  # edited by the admin/' \
  -e 's/^stop_timeout_s = 60.0/stop_timeout_s = 5.0/' /etc/heygem/daemon.toml"
ct systemctl restart heygem-daemon
expect "the edit is in place" ct grep -q "edited by the admin" /etc/heygem/daemon.toml
# the bundled sample (a presenter, 10 s of speech) as $VIDEOS videos: long enough to be running
# when the upgrade restarts the daemon; dropped like a share with create mask 0664 would
assets=$(ct /opt/heygem/venv/bin/python -c 'import heygem_daemon, pathlib; print(pathlib.Path(heygem_daemon.__file__).parent / "assets")')
ct_sh "set -e; d='/srv/heygem/inbox/.$JOB'; mkdir \"\$d\"; for n in \$(seq $VIDEOS); do cp $assets/sample_face.mp4 \"\$d/face\$n.mp4\"; done
  cp $assets/sample_voice.m4a \"\$d/voice.m4a\"; touch \"\$d/READY\"; chmod -R g+w \"\$d\"; mv \"\$d\" '/srv/heygem/inbox/$JOB'"
for _ in $(seq 240); do
  ct_sh "ls /srv/heygem/inbox/.heygem/claimed/ 2>/dev/null | grep -q ." && break; sleep 0.5
done
expect "the daemon claimed the job" ct_sh "ls /srv/heygem/inbox/.heygem/claimed/ | grep -q ."

step "upgrade to $V2 while the job runs"
VENV1=$(ct readlink /opt/heygem/venv)
ct apt-get install -y -q /root/debs/"$(basename "$DEB2")" >"$WORK/upgrade.log" 2>&1 \
  || fail "apt-get install (upgrade)" "$(tail -30 "$WORK/upgrade.log")"
grep "heygem-daemon:" "$WORK/upgrade.log" || true
expect "dpkg says installed $V2" sh -c "nsenter -t $CT_PID -a dpkg-query -W -f='\${Version}' heygem-daemon | grep -qx '$V2'"
expect "the admin's edit of daemon.toml is kept" ct grep -q "edited by the admin" /etc/heygem/daemon.toml
VENV2=$(ct readlink /opt/heygem/venv)
expect "a new environment ($VENV1 -> $VENV2), the old one removed" sh -c \
  "[ '$VENV1' != '$VENV2' ] && ! nsenter -t $CT_PID -a test -e /opt/heygem/$VENV1"
for _ in $(seq 240); do
  [ "$(ct systemctl is-active heygem-daemon || true)" = active ] && break; sleep 0.5
done
PID2=$(main_pid)
expect "the daemon was restarted (pid $PID1 -> $PID2) and is active" sh -c \
  "[ '$PID2' != '$PID1' ] && [ '$PID2' != 0 ] && [ \"\$(nsenter -t $CT_PID -a systemctl is-active heygem-daemon)\" = active ]"
stopping=$(journal_events | grep '^daemon_stopping' | tail -1)
expect "it stopped with the job running: $stopping" sh -c "echo '$stopping' | grep -q '\"$JOB\"'"
for _ in $(seq 900); do
  ct test -f "/srv/heygem/outbox/$JOB/report.json" && break; sleep 1
done
report=$(ct cat "/srv/heygem/outbox/$JOB/report.json" 2>/dev/null || echo '{}')
summary=$(echo "$report" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("status"), sum(o.get("status")=="done" for o in r.get("outputs",[])))')
expect "the job was finished after the restart: status, videos done = $summary" sh -c "[ '$summary' = 'done $VIDEOS' ]"
expect "published once (no '$JOB-2'), nothing left claimed" sh -c \
  "! nsenter -t $CT_PID -a test -e '/srv/heygem/outbox/$JOB-2' && [ -z \"\$(nsenter -t $CT_PID -a ls /srv/heygem/inbox/.heygem/claimed/)\" ]"
resumed=$(journal_events | grep -c '^video_already_done' || true)
expect "it was checkpointed and resumed: $resumed videos finished before the restart not redone" sh -c \
  "[ $resumed -gt 0 ] && [ $resumed -lt $VIDEOS ]"
ct_sh "echo 'a file people left' > /srv/heygem/inbox/notes.txt; echo fetched > /srv/heygem/outbox/people-file.txt"
DATA_BEFORE=$(ct_sh "cd /srv/heygem && find inbox outbox -type f ! -path '*/.heygem/*' ! -name 'status.*' ! -name index.html -exec sha256sum {} + | sort")

step "the admin caps the service: MemoryMax=3G, CPUQuota=100%, workers = \"auto\""
# start-up plans the videos in flight under the unit's limits, not the host's (heygem_daemon/cgroups.py)
ct_sh "mkdir -p /etc/systemd/system/heygem-daemon.service.d && printf '[Service]\nMemoryMax=3G\nCPUQuota=100%%\nEnvironment=HEYGEM_WORKERS=auto\n' >/etc/systemd/system/heygem-daemon.service.d/limits.conf"
ct systemctl daemon-reload
ct systemctl restart heygem-daemon
for _ in $(seq 240); do
  [ "$(ct systemctl is-active heygem-daemon || true)" = active ] && break; sleep 0.5
done
rule=$(ct_sh "journalctl -u heygem-daemon -o cat --no-pager" | grep '"runtime_configured"' | tail -1 \
  | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("workers_rule", ""))' 2>/dev/null || true)
# whether the container's systemd could set the limits at all (a cgroup v2 or v1 memory controller it may write)
limit=$(ct_sh "p=\$(cut -d: -f3 /proc/\$(systemctl show -p MainPID --value heygem-daemon)/cgroup | grep -m1 heygem); \
  cat /sys/fs/cgroup\$p/memory.max /sys/fs/cgroup/memory\$p/memory.limit_in_bytes 2>/dev/null | head -1" || true)
cpus=$(ct nproc)
if [ "$limit" = 3221225472 ]; then
  expect "auto planned under the unit's limits: $rule" env RULE="$rule" CPUS="$cpus" sh -c \
    'printf %s "$RULE" | grep -q "cgroup memory limit" &&
     { [ "$CPUS" -lt 2 ] || printf %s "$RULE" | grep -q "1 cores (the cgroup CPU quota)"; }'
else
  # a cgroup v1 host (this build box): nspawn gives the container its controllers read-only, so
  # systemd there can set no limit and the service sits in the container's own memory group
  printf 'CHECK %-72s skipped\n' "the unit's limits: systemd in this container could not apply MemoryMax"
fi
ct rm -r /etc/systemd/system/heygem-daemon.service.d
ct systemctl daemon-reload
ct systemctl restart heygem-daemon

step "remove"
ct apt-get remove -y -q heygem-daemon >"$WORK/remove.log" 2>&1 || fail "apt-get remove" "$(tail -30 "$WORK/remove.log")"
expect "dpkg says config-files (removed, config kept)" sh -c "[ \"\$(nsenter -t $CT_PID -a dpkg-query -W -f='\${Status}' heygem-daemon)\" = 'deinstall ok config-files' ]"
expect "the daemon stopped" sh -c "! nsenter -t $CT_PID -a systemctl is-active -q heygem-daemon"
expect "the program is gone (/opt/heygem, /usr/lib/heygem-daemon, the unit)" sh -c \
  "! nsenter -t $CT_PID -a test -e /opt/heygem && ! nsenter -t $CT_PID -a test -e /usr/lib/heygem-daemon && ! nsenter -t $CT_PID -a test -e /lib/systemd/system/heygem-daemon.service"
expect "the config stays, with the admin's edit" ct grep -q "edited by the admin" /etc/heygem/daemon.toml
expect "the user stays" ct getent passwd heygem
expect "inbox and outbox untouched" sh -c "[ \"\$(nsenter -t $CT_PID -a sh -c \"cd /srv/heygem && find inbox outbox -type f ! -path '*/.heygem/*' ! -name 'status.*' ! -name index.html -exec sha256sum {} + | sort\")\" = '$DATA_BEFORE' ]"

step "purge"
ct apt-get purge -y -q heygem-daemon >"$WORK/purge.log" 2>&1 || fail "apt-get purge" "$(tail -30 "$WORK/purge.log")"
expect "dpkg knows the package no more" sh -c "! nsenter -t $CT_PID -a dpkg-query -W -f='\${Status}' heygem-daemon 2>/dev/null | grep -q ok"
expect "the config is gone (/etc/heygem, /etc/default/heygem-daemon)" sh -c \
  "! nsenter -t $CT_PID -a test -e /etc/heygem/daemon.toml && ! nsenter -t $CT_PID -a test -e /etc/default/heygem-daemon"
expect "the user and group are gone" sh -c "! nsenter -t $CT_PID -a getent passwd heygem && ! nsenter -t $CT_PID -a getent group heygem"
expect "the state is gone (/var/lib/heygem)" sh -c "! nsenter -t $CT_PID -a test -e /var/lib/heygem"
expect "inbox and outbox contents never deleted ($(echo "$DATA_BEFORE" | wc -l) files, same checksums)" sh -c \
  "[ \"\$(nsenter -t $CT_PID -a sh -c \"cd /srv/heygem && find inbox outbox -type f ! -path '*/.heygem/*' ! -name 'status.*' ! -name index.html -exec sha256sum {} + | sort\")\" = '$DATA_BEFORE' ]"

printf '\nevery check passed in %ds\npackage_lifecycle: %d passed, 0 failed\n' "$(( $(date +%s) - started ))" "$passed"
