#!/usr/bin/env bash
# Installs what Strata needs from Debian's archive, if it is missing:
#   build: oneDNN (libdnnl-dev), zlib (zlib1g-dev), pkg-config, libcurl (libcurl4-openssl-dev,
#          `strata data fetch`), libpng (libpng-dev) and TurboJPEG (libturbojpeg0-dev) for
#          image-folder datasets
#   demo:  Fashion-MNIST (dataset-fashion-mnist), with `--dataset`
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

packages=()
# oneDNN has no pkg-config file in Debian: look for its header.
[[ -f /usr/include/oneapi/dnnl/dnnl.h ]] || packages+=(libdnnl-dev)
pkg-config --exists zlib 2>/dev/null || packages+=(zlib1g-dev)
pkg-config --exists libcurl 2>/dev/null || packages+=(libcurl4-openssl-dev)
pkg-config --exists libpng 2>/dev/null || packages+=(libpng-dev)
pkg-config --exists libturbojpeg 2>/dev/null || packages+=(libturbojpeg0-dev)
command -v pkg-config >/dev/null 2>&1 || packages+=(pkg-config)
if [[ "${1:-}" == "--dataset" && ! -d /usr/share/datasets/fashion-mnist ]]; then
    packages+=(dataset-fashion-mnist)
fi

if ((${#packages[@]} == 0)); then
    exit 0
fi

# pkg-config itself missing makes the zlib check fail too; that is fine: apt skips what is there.
if [[ $(id -u) -ne 0 ]]; then
    echo "Strata needs: ${packages[*]}" >&2
    echo "Install them with:  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
    exit 1
fi
echo "Installing ${packages[*]} with apt-get..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
