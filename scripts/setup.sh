#!/usr/bin/env bash
# Installs the Debian 12 packages sweep builds and runs with. Safe to run again: it
# only calls apt-get when something is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libsqlite3-dev sqlite3
  libcli11-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libgmock-dev
  mawk procps openssl
  # The fuzz targets (tests/fuzz/run.sh): clang, libFuzzer, llvm-symbolizer.
  clang-14 libclang-rt-14-dev llvm-14
  # sweep-train: Debian's CPU LibTorch, the OpenBLAS it should use (about 10x faster
  # than the reference BLAS it links by default), zlib, and the main job's dataset.
  libtorch-dev libopenblas0-pthread zlib1g-dev dataset-fashion-mnist
  # The dashboard: cpp-httplib, and Chromium for its browser tests.
  libcpp-httplib-dev chromium
  # Cluster tests: a real single-node Slurm (slurmctld, slurmd, munge) and network
  # namespaces with veth links (iproute2) standing in for nodes.
  slurm-wlm munge iproute2
)
# The dashboard's web dependencies (ECharts, playwright-core) come from npm: a
# Node.js from elsewhere (e.g. NodeSource, which bundles npm) will do, else Debian's.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

# Installs the dashboard's npm packages exactly as dashboard/package-lock.json pins
# them (npm ci); again only when the lockfile is newer than the last install.
install_web_deps() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dashboard"
  if [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return
  fi
  echo "setup: npm ci in dashboard/ (ECharts, playwright-core)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

# Debian's libtorch links libblas.so.3/liblapack.so.3; make them OpenBLAS (pthread)
# even if an alternative was pinned to the reference BLAS by hand.
use_openblas() {
  local arch dir
  arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  dir=/usr/lib/$arch
  for lib in libblas.so.3 liblapack.so.3; do
    local name="$lib-$arch" target="$dir/openblas-pthread/$lib"
    [ -e "$target" ] || continue
    if [ "$(readlink -f "$dir/$lib")" != "$(readlink -f "$target")" ]; then
      echo "setup: pointing $lib at OpenBLAS"
      $sudo update-alternatives --set "$name" "$target"
    fi
  done
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  use_openblas
  install_web_deps
  exit 0
fi

if [ -n "$sudo" ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
use_openblas
install_web_deps
