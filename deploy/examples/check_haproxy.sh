#!/bin/sh
# The health check of the examples (keepalived's vrrp_script chk_haproxy; havip's script
# tracker "chk_haproxy"): exits 0 while HAProxy runs, 1 otherwise. Install it as
# /etc/keepalived/check_haproxy.sh, owned by root and writable by root only.
if pidof haproxy >/dev/null 2>&1; then
    exit 0
fi
exit 1
