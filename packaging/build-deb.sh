#!/usr/bin/env bash
# Builds the .deb: the static release binary (build-release.sh), then cargo-deb
# with the metadata in Cargo.toml [package.metadata.deb].
#   packaging/build-deb.sh    → target/debian/wabridge_<version>-1_amd64.deb
# Needs cargo-deb (`cargo install cargo-deb --locked`). Prints the .deb's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${WABRIDGE_TARGET:-x86_64-unknown-linux-gnu}"
if ! command -v cargo-deb >/dev/null; then
  echo "error: cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi
WABRIDGE_TARGET="$TARGET" packaging/build-release.sh >&2
mkdir -p target/debian
# --no-build: the binary above is the one to ship (cargo-deb would build a
# dynamic one); the asset target/release/wabridge resolves to target/$TARGET/release.
cargo deb --no-build --target "$TARGET" --output target/debian/ >&2
ls -t target/debian/wabridge_*.deb | head -1
