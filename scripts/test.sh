#!/usr/bin/env bash
# Runs every test of the workspace, installing or building what the tests need first:
#   - a Rust toolchain (rustup, 1.89 or newer) must be there;
#   - Prometheus (`prometheus` and `promtool`, Debian package `prometheus`) is installed
#     with apt-get when missing: the HTTP providers' tests run a real server on 127.0.0.1;
#   - git (with `git daemon`) is used by gitops-core's tests against real repositories;
#   - kube-apiserver and etcd are built from their Go modules by testenv/build.sh (needs
#     Go; the first build takes ~15 min on 2 cores, then it is a cached no-op) for the
#     tests that run against a real Kubernetes API server.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), version 1.89 or newer" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$* not found and no apt-get: install it yourself" >&2
    exit 1
  fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
fi
# gitops-core's registry tests run a real OCI registry (Debian `docker-registry`, the CNCF
# distribution server) on 127.0.0.1 and make its bcrypt htpasswd file with `htpasswd`
# (Debian `apache2-utils`).
if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  apt_install docker-registry apache2-utils
fi
if ! command -v git >/dev/null 2>&1 || [ ! -x "$(git --exec-path)/git-daemon" ]; then
  apt_install git
fi
if ! command -v go >/dev/null 2>&1; then
  echo "go not found: Go 1.26 or newer builds the test Kubernetes API server (testenv/build.sh)" >&2
  exit 1
fi

# kube-apiserver + etcd for the integration tests (cached after the first build).
bash testenv/build.sh

# Unit, integration, property, corpus, conformance (one summary line per vector file),
# example, real-server (Prometheus, git daemon, kube-apiserver) and bench-smoke tests of
# every crate, with every feature (HTTP and Kubernetes providers, appliers, simulator).
cargo test --workspace --all-targets --all-features --locked
# Documentation examples.
cargo test --workspace --doc --all-features --locked
