#!/usr/bin/env bash
# Stop the Dovecot started by dovecot-up.sh DIR. Idempotent.
# Usage: dovecot-down.sh DIR [--purge]   (--purge also deletes DIR)
set -uo pipefail
# alive PID: running and not a zombie (PID 1 of a container may reap late)
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
# group_alive PGID: a process of that group is running (zombies do not count)
group_alive() { ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {f=1} END {exit !f}'; }
DIR=${1:?usage: $0 DIR [--purge]}
[ -d "$DIR" ] || exit 0
PIDF=$DIR/run/master.pid
if [ -s "$PIDF" ] && alive "$(cat "$PIDF")"; then
    PID=$(cat "$PIDF")
    kill "$PID"            # master stops its children, then exits (~1 s)
    for _ in $(seq 1 100); do alive "$PID" || break; sleep 0.05; done
    alive "$PID" && kill -9 -- "-$PID"     # its own process group only
    # Processes of the group that outlive the master (seen here: imap sessions, log,
    # stats) would keep serving old connections, so a "restart" would not drop its
    # clients as a real one does; end them too (the group is Dovecot's own: setsid).
    if group_alive "$PID"; then
        kill -TERM -- "-$PID" 2>/dev/null
        for _ in $(seq 1 40); do group_alive "$PID" || break; sleep 0.05; done
        group_alive "$PID" && kill -9 -- "-$PID" 2>/dev/null
    fi
fi
if [ "${2:-}" = --purge ]; then
    [ -L "$DIR/run" ] && rm -rf "$(readlink -f "$DIR/run")"
    rm -rf "$DIR"
fi
exit 0
