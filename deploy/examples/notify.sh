#!/bin/sh
# The notify hook of the examples, after the guide's step 5: records the node's state and
# logs each transition. Install it as /etc/keepalived/notify.sh.
#
# keepalived runs it as notify_master/backup/fault/stop with the state as $1.
# havipctl watch --exec runs it with keepalived's notify arguments instead:
#   INSTANCE NAME STATE PRIORITY   (e.g. INSTANCE VI_1 MASTER 50)
# so the state is $3 there. Both forms are understood.
set -u
log_file=/var/log/keepalived.log
state_dir=/var/keepalived

if [ "${1:-}" = INSTANCE ] || [ "${1:-}" = GROUP ]; then
    state=${3:-}
else
    state=${1:-}
fi

log_write() {
    echo "[$(date '+%Y-%m-%d %T')] $1" >> "$log_file"
}

[ -d "$state_dir" ] || mkdir -p "$state_dir"

case "$state" in
    MASTER)
        echo -n "$state" > "$state_dir/state"
        log_write " notify_master"
        echo -n "0" > "$state_dir/vip_check_failed_count"
        ;;
    BACKUP)
        echo -n "$state" > "$state_dir/state"
        log_write " notify_backup"
        ;;
    FAULT)
        echo -n "$state" > "$state_dir/state"
        log_write " notify_fault"
        ;;
    STOP)
        echo -n "$state" > "$state_dir/state"
        log_write " notify_stop"
        ;;
    *)
        log_write " notify_unknown"
        log_write " STATE ERROR!!!"
        ;;
esac
