#!/usr/bin/env bash
# Installs what tests/go/ needs from Debian when missing: the Go toolchain,
# a C compiler for cgo, and mattn/go-sqlite3 with the system SQLite. Go then
# builds offline from Debian's /usr/share/gocode (GOPATH mode, no module
# proxy): see tests/go/files_go_test.ts for the environment it uses.
set -euo pipefail
packages=(golang-go gcc libc6-dev golang-github-mattn-go-sqlite3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
go version
