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
  # As the official image: a config file stays the first argument, protected mode off after it.
  shift
  if [ -f "${1:-}" ]; then
    conf=$1
    shift
    set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
fi
exec "$@"
