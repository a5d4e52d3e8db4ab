#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
# Today the tests need only a Rust toolchain (rustup, as in rust-toolchain.toml);
# later areas (Prometheus, git daemon, a Kubernetes API server) add their installs here.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), version 1.89 or newer" >&2
  exit 1
fi

# Unit, integration, property, corpus, conformance (one summary line per vector file),
# example and bench-smoke tests of every crate.
cargo test --workspace --all-targets --locked
# Documentation examples.
cargo test --workspace --doc --locked
