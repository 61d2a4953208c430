#!/bin/sh
# Ray Serve's HAProxy, with its statistics page and Prometheus exporter on loopback only.
#
# Ray 2.60 writes `bind *:<RAY_SERVE_HAPROXY_STATS_PORT>` and `bind :<RAY_SERVE_HAPROXY_METRICS_PORT>`
# into the HAProxy config it generates, which is every interface, and has no setting for the address.
# Ray runs this file instead of HAProxy (RAY_SERVE_HAPROXY_BINARY_PATH), with HAProxy's own arguments,
# at each start and reload: it rewrites those two binds to 127.0.0.1 in the config named by -f, then
# becomes HAProxy (exec: the same process id, which Ray checks), HAPROXY_WRAPPED_BINARY
# (service.ray_serve sets both variables; docs/deploy/ray.md).
set -eu
config=""
previous=""
for argument in "$@"; do
    if [ "$previous" = "-f" ]; then config="$argument"; fi
    previous="$argument"
done
if [ -n "$config" ]; then
    # Only binds with no address (`*:port`, `:port`); the serving frontend's address is Ray's http_options.host.
    sed -i -e 's/^\([[:space:]]*bind[[:space:]]\{1,\}\)\*\{0,1\}:\([0-9]\)/\1127.0.0.1:\2/' "$config"
fi
exec "${HAPROXY_WRAPPED_BINARY:?HAPROXY_WRAPPED_BINARY names the HAProxy binary to run}" "$@"
