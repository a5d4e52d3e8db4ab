#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
# The tests need a Rust toolchain (rustup, as in rust-toolchain.toml) and Prometheus
# (`prometheus` and `promtool`, installed below with apt-get when missing); later areas
# (git daemon, a Kubernetes API server) add their installs here.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), version 1.89 or newer" >&2
  exit 1
fi

# The HTTP providers' tests (feature `rollout-analysis/http`) run a real Prometheus server
# on 127.0.0.1, fed with promtool-backfilled data.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus/promtool not found and no apt-get: install Prometheus 2.x yourself" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
fi

# Unit, integration, property, corpus, conformance (one summary line per vector file),
# example and bench-smoke tests of every crate, with the HTTP providers.
cargo test --workspace --all-targets --locked --features rollout-analysis/http
# Documentation examples.
cargo test --workspace --doc --locked
