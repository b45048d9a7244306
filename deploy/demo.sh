#!/usr/bin/env bash
# The havip demo: two havipd nodes share a virtual IP in network namespaces; the master's
# link fails and the backup takes the VIP over. Prints the outage a client saw.
#
# Run as root from a clone of the repository:   sudo deploy/demo.sh
# It builds havipd and havipctl (release), creates its own namespaces (hvdemo<pid>-*),
# and removes everything it made when it ends, also on failure or Ctrl-C.
# HAVIPD=/path/to/havipd HAVIPCTL=/path/to/havipctl skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
    echo "demo.sh needs root to create network namespaces: sudo $0" >&2
    exit 1
fi
for tool in ip ping; do
    command -v "$tool" >/dev/null || { echo "demo.sh needs '$tool' (Debian: apt-get install -y iproute2 iputils-ping)" >&2; exit 1; }
done

if [[ -z "${HAVIPD:-}" || -z "${HAVIPCTL:-}" ]]; then
    echo "==> building havipd and havipctl (cargo build --release)"
    cargo build --release --quiet -p havipd -p havipctl
    HAVIPD=$PWD/target/release/havipd
    HAVIPCTL=$PWD/target/release/havipctl
fi

ID=hvdemo$$
BR=$ID-br A=$ID-a B=$ID-b C=$ID-c
WORK=$(mktemp -d /tmp/havip-demo.XXXXXX)
PIDS=()
GROUPS_TO_KILL=()

cleanup() {
    for pgid in "${GROUPS_TO_KILL[@]}"; do kill -- "-$pgid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in $A $B $C $BR; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
ctl() { local node=$1; shift; "$HAVIPCTL" --server "unix://$WORK/$node.sock" "$@"; }
state() { ctl "$1" get-instance web -o json 2>/dev/null | grep -o '"state": *"STATE_[A-Z]*"' | grep -o 'STATE_[A-Z]*' || true; }
now_ms() { date +%s%3N; }

say "building the segment: a bridge, nodes a (10.0.0.1) and b (10.0.0.2), a client (10.0.0.10)"
ip netns add "$BR"
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 type bridge stp_state 0 forward_delay 0
ip -n "$BR" link set br0 up
host() {
    local ns=$1 name=$2 addr=$3
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "p-$name" netns "$BR"
    ip -n "$BR" link set "p-$name" master br0 up
    ip -n "$ns" addr add "$addr" dev eth0
    ip -n "$ns" link set eth0 up
}
host "$A" a 10.0.0.1/24
host "$B" b 10.0.0.2/24
host "$C" c 10.0.0.10/24

say "starting havipd on a and b"
for node in a b; do
    ns=$A; [[ $node == b ]] && ns=$B
    ip netns exec "$ns" "$HAVIPD" --db "$WORK/$node.db" --listen "unix://$WORK/$node.sock" \
        >"$WORK/$node.log" 2>&1 &
    PIDS+=($!)
done
for node in a b; do
    for _ in $(seq 600); do [[ -S $WORK/$node.sock ]] && break; sleep 0.05; done
done

say "creating the instance on both nodes (the Tencent Cloud HAVIP guide's setup: VRRPv2, unicast, PASS, 1 s adverts)"
ctl a create-instance web --interface eth0 --vrid 51 --priority 150 --vip 10.0.0.100/24 \
    --version 2 --advert-interval 1s --unicast-src 10.0.0.1 --peer 10.0.0.2 --auth-pass demo
ctl b create-instance web --interface eth0 --vrid 51 --priority 100 --vip 10.0.0.100/24 \
    --version 2 --advert-interval 1s --unicast-src 10.0.0.2 --peer 10.0.0.1 --auth-pass demo

for _ in $(seq 600); do [[ $(state a) == STATE_MASTER && $(state b) == STATE_BACKUP ]] && break; sleep 0.05; done
[[ $(state a) == STATE_MASTER ]] || { echo "a did not become master; its log:"; cat "$WORK/a.log"; exit 1; }
ctl b get-instance web

say "streaming events from the backup (havipctl watch), and a client pinging the VIP every 10 ms"
# In its own process group, so cleanup stops havipctl and sed together.
setsid bash -c "'$HAVIPCTL' --server 'unix://$WORK/b.sock' watch 2>&1 | sed -u 's/^/    [b watch] /'" &
GROUPS_TO_KILL=($!)
ip netns exec "$C" ping -D -n -i 0.01 -W 1 10.0.0.100 >"$WORK/ping.log" 2>&1 &
PING=$!
PIDS+=($PING)
sleep 2

say "failing the master: node a's link goes down"
t0=$(now_ms)
ip -n "$BR" link set p-a down
until ip -n "$B" -o addr show dev eth0 | grep -q ' 10.0.0.100/'; do
    (( $(now_ms) - t0 < 15000 )) || { echo "b did not take the VIP over; its log:"; cat "$WORK/b.log"; exit 1; }
    sleep 0.005
done
t1=$(now_ms)
sleep 2
kill "$PING" 2>/dev/null || true
sleep 0.2

outage=$(awk -F'[][]' '/bytes from/ { t = $2 * 1000; if (last && t - last > max) max = t - last; last = t }
                      END { printf "%d", max }' "$WORK/ping.log")
mdi=$(ctl b get-instance web -o json | grep -A2 '"masterDownInterval"' | grep -o '"[0-9.]*s"' | head -1 | tr -d '"')

say "result"
echo "    the VIP moved to b $((t1 - t0)) ms after a's link went down"
echo "    the client's longest gap between ping replies: ${outage} ms"
echo "    Master_Down_Interval (3 x advert interval + skew, what VRRP allows): ${mdi:-?}"
echo
ctl b history --limit 5
say "done; removing the namespaces"
