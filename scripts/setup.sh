#!/usr/bin/env bash
# Installs the Debian 12 packages sweep builds and runs with. Safe to run again: it
# only calls apt-get (and npm) when something is missing. Needs root (or sudo).
#
#   bash scripts/setup.sh main   what the main job needs: the compiler, the libraries
#                                of `sweep`, `sweep-train` (LibTorch) and the dashboard
#                                (ECharts), the Fashion-MNIST dataset
#   bash scripts/setup.sh        everything (the default, what tests and CI need): the
#                                above plus GoogleTest, Chromium and playwright-core
#                                for the browser test, clang for the fuzz targets, Slurm
#                                and iproute2 for the cluster tests
set -euo pipefail
what=${1:-all}
case "$what" in
  main | all) ;;
  *) echo "setup: unknown set '$what' (expected main, or nothing for all)" >&2; exit 2 ;;
esac

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libsqlite3-dev sqlite3
  libcli11-dev nlohmann-json3-dev libspdlog-dev libcpp-httplib-dev
  mawk procps openssl
  # sweep-train: Debian's CPU LibTorch, the OpenBLAS it should use (about 10x faster
  # than the reference BLAS it links by default), zlib, and the main job's dataset.
  libtorch-dev libopenblas0-pthread zlib1g-dev dataset-fashion-mnist
)
if [ "$what" = all ]; then
  packages+=(
    libgtest-dev libgmock-dev
    # The fuzz targets (tests/fuzz/run.sh): clang, libFuzzer, llvm-symbolizer.
    clang-14 libclang-rt-14-dev llvm-14
    # The dashboard's browser test.
    chromium
    # Cluster tests: a real single-node Slurm (slurmctld, slurmd, munge) and network
    # namespaces with veth links (iproute2) standing in for nodes.
    slurm-wlm munge iproute2
  )
fi
# The dashboard's web dependencies come from npm: a Node.js from elsewhere (e.g.
# NodeSource, which bundles npm) will do, else Debian's.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

# Installs the dashboard's npm packages exactly as dashboard/package-lock.json pins
# them (npm ci): ECharts, which is built into `sweep`, and for `all` playwright-core
# (the browser test's driver). Again only when the lockfile or the set changed.
install_web_deps() {
  local dir stamp
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dashboard"
  stamp="$dir/node_modules/.sweep-setup-$what"
  if [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] &&
     { [ -e "$stamp" ] || [ -e "$dir/node_modules/.sweep-setup-all" ]; }; then
    return
  fi
  local omit=()
  [ "$what" = main ] && omit=(--omit=dev)
  echo "setup: npm ci in dashboard/ (${what}: ECharts$([ "$what" = all ] && echo ', playwright-core'))"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error "${omit[@]}")
  touch "$stamp"
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
else
  if [ -n "$sudo" ]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
use_openblas
install_web_deps
