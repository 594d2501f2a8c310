#!/bin/sh
# Sandbox stand-in for the official redis image's entrypoint: `redis-server ARGS` as user redis in
# /data, protected mode off (the container network is the boundary; set --requirepass).
set -eu
if [ "${1#-}" != "${1:-}" ] || [ -z "${1:-}" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
