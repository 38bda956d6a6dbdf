#!/usr/bin/env sh
# Installs Debian's Go (golang-go) when `go` is missing, for `deno task
# test:go`. Debian's Go is 1.19; the tests say which cases follow newer Go.
set -eu
if command -v go >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "go is missing; install golang-go (run this script as root to do it)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
go version
