#!/usr/bin/env bash
# Installs what the sandbox and the tests need on Debian/Ubuntu, only what is missing, then starts
# the Docker engine and installs the npm dependencies. Safe to run again: it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
# --node: only the npm packages (make check and make test-unit need nothing else: no root, no apt).
node_only=false
[ "${1:-}" = --node ] && node_only=true

need=()
if ! $node_only; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
  command -v cargo >/dev/null 2>&1 || need+=(cargo)
  command -v make >/dev/null 2>&1 || need+=(make)
  # make gates runs cargo fmt and cargo clippy (rustup toolchains carry them; Debian packages them apart)
  command -v cargo >/dev/null 2>&1 && ! cargo fmt --version >/dev/null 2>&1 && need+=(rustfmt)
  command -v cargo >/dev/null 2>&1 && ! cargo clippy --version >/dev/null 2>&1 && need+=(rust-clippy)
  command -v ssh-audit >/dev/null 2>&1 || need+=(ssh-audit)
  command -v testssl >/dev/null 2>&1 || need+=(testssl.sh)
  # make security-scan's outside port scan
  command -v nmap >/dev/null 2>&1 || need+=(nmap)
  # the backup tests open the zstd-compressed dump and base a backup stores
  command -v zstd >/dev/null 2>&1 || need+=(zstd)
  # make secrets-edit writes age files; the tests check that the age tool reads them (and operators use age-keygen)
  command -v age >/dev/null 2>&1 || need+=(age)
  # the pipeline rehearsal: the app repository is a git repository; the callers' alert job uses jq and curl
  command -v git >/dev/null 2>&1 || need+=(git)
  command -v jq >/dev/null 2>&1 || need+=(jq)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  # the status page and the uptime report are checked in a real headless browser (playwright-core drives it)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "deps: missing ${need[*]}; run as root, or install them: apt-get install ${need[*]}" >&2
      exit 2
    fi
    echo "deps: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi

  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "deps: the Docker engine is not running; start it (sudo systemctl start docker) or run as root" >&2
      exit 2
    fi
    echo "deps: starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "deps: dockerd did not start: see /var/log/dockerd.log" >&2; exit 1; }
  fi

fi # node_only

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
