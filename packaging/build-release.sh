#!/usr/bin/env bash
# Builds the release binary: one statically linked executable (glibc, crt-static;
# TLS is rustls, no OpenSSL anywhere), stripped.
#   packaging/build-release.sh          → target/x86_64-unknown-linux-gnu/release/wabridge
# Prints the path of the binary on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${WABRIDGE_TARGET:-x86_64-unknown-linux-gnu}"
# RUSTFLAGS with an explicit --target reach only the target's crates, not the
# build scripts and proc-macros, which cannot be static.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
export CARGO_PROFILE_RELEASE_STRIP=symbols
cargo build --locked --release --target "$TARGET" >&2

BIN="target/$TARGET/release/wabridge"
if ldd "$BIN" >/dev/null 2>&1 && ! ldd "$BIN" 2>&1 | grep -q "statically linked"; then
  echo "error: $BIN is dynamically linked:" >&2
  ldd "$BIN" >&2
  exit 1
fi
if command -v file >/dev/null && ! file "$BIN" | grep -Eq "static(ally|-pie) linked"; then
  echo "error: file(1) does not see a static binary: $(file "$BIN")" >&2
  exit 1
fi
echo "$BIN"
