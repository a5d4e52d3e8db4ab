#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules at the versions pinned in
# versions.env (and go/*/go.mod) into a cache directory, for the rollout-testenv
# fixture. Go is test infrastructure only: nothing here is a library dependency.
#
# Cache layout: ${ROLLOUT_TESTENV_CACHE_DIR:-$HOME/.cache/rollout-testenv}/
#   k8s-<KUBE_VERSION>_etcd-<ETCD_VERSION>/bin/{kube-apiserver,etcd}
# ROLLOUT_TESTENV_BIN_DIR overrides the bin directory as a whole.
# The build is skipped when both binaries already exist there; pass --force (or
# set ROLLOUT_TESTENV_FORCE_BUILD=1) to rebuild. --print-bin-dir prints the bin
# directory and exits. ROLLOUT_TESTENV_GO_PARALLEL sets `go build -p` (default 1,
# to leave the other core to whoever else is working on the machine).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${ROLLOUT_TESTENV_CACHE_DIR:-${HOME:-/tmp}/.cache/rollout-testenv}"
version_dir="$cache_root/k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}"
bin_dir="${ROLLOUT_TESTENV_BIN_DIR:-$version_dir/bin}"
force="${ROLLOUT_TESTENV_FORCE_BUILD:-0}"

for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print-bin-dir) echo "$bin_dir"; exit 0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# The go.mod files must pin what versions.env says, or the cache key lies.
grep -qE "k8s.io/kubernetes ${KUBE_VERSION}( |$)" "$here/go/kube-apiserver/go.mod" || {
  echo "build.sh: go/kube-apiserver/go.mod does not pin k8s.io/kubernetes ${KUBE_VERSION}" >&2; exit 1; }
grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" "$here/go/etcd/go.mod" || {
  echo "build.sh: go/etcd/go.mod does not pin go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" >&2; exit 1; }

have_all() { [[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/etcd" ]]; }

if [[ "$force" != 1 ]] && have_all; then
  echo "build.sh: cached binaries in $bin_dir (kube-apiserver ${KUBE_VERSION}, etcd ${ETCD_VERSION})"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH; it is needed to build kube-apiserver and etcd" >&2; exit 1; }

mkdir -p "$bin_dir"
# Serialise concurrent builds (several test binaries may ask at once).
exec 9>"$bin_dir/.build.lock"
flock 9
if [[ "$force" != 1 ]] && have_all; then
  echo "build.sh: another process built the binaries in $bin_dir"
  exit 0
fi

parallel="${ROLLOUT_TESTENV_GO_PARALLEL:-1}"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"
started=$(date +%s)

kube_minor="${KUBE_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $version_pkg.gitVersion=${KUBE_VERSION} -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=${kube_minor} -X $version_pkg.gitTreeState=clean"

echo "build.sh: building etcd ${ETCD_VERSION} into $bin_dir (go build -p $parallel)"
(cd "$here/go/etcd" && nice -n 10 go build -p "$parallel" -trimpath -ldflags "-s -w" \
  -o "$bin_dir/etcd.tmp" go.etcd.io/etcd/server/v3)
mv -f "$bin_dir/etcd.tmp" "$bin_dir/etcd"

echo "build.sh: building kube-apiserver ${KUBE_VERSION} into $bin_dir (go build -p $parallel)"
(cd "$here/go/kube-apiserver" && nice -n 10 go build -p "$parallel" -trimpath -ldflags "$kube_ldflags" \
  -o "$bin_dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
mv -f "$bin_dir/kube-apiserver.tmp" "$bin_dir/kube-apiserver"

elapsed=$(( $(date +%s) - started ))
size=$(du -sh "$bin_dir" | cut -f1)
{
  echo "kube_version=${KUBE_VERSION}"
  echo "etcd_version=${ETCD_VERSION}"
  echo "go_version=$(go env GOVERSION)"
  echo "go_build_parallel=$parallel"
  echo "build_seconds=$elapsed"
  echo "bin_size=$size"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$bin_dir/build-info.txt"
echo "build.sh: done in ${elapsed}s; $bin_dir holds $size"
