#!/bin/sh
# dist/cuda/strata: runs bin/strata (static Swift runtime, CUDA trait) on a Linux machine with
# an NVIDIA driver and no Swift. bin/strata opens the CUDA libraries itself when a GPU is first
# used: from $STRATA_CUDA_LIBS (colon-separated directories) when it is set (also put on
# LD_LIBRARY_PATH); otherwise this wrapper looks for them (NVIDIA's pip wheels, e.g. PyTorch's, or a toolkit) and puts their
# directories in LD_LIBRARY_PATH. Without them strata still runs on the CPU.
here=$(dirname "$(readlink -f "$0")")
names="libcudart.so.@MAJOR@ libcublas.so.@MAJOR@ libnvrtc.so.@MAJOR@ libcudnn.so.9"

# Directories under $@ holding any of $names, one per line.
search() {
    find "$@" \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
        \( -name libcudart.so.@MAJOR@ -o -name libcublas.so.@MAJOR@ -o -name libnvrtc.so.@MAJOR@ \
           -o -name libcudnn.so.9 \) -print 2>/dev/null | xargs -r -n1 dirname | sort -u
}
# Whether every name is in one of the directories (lines of $1).
complete() {
    for name in $names; do
        echo "$1" | while read -r d; do [ -e "$d/$name" ] && echo yes; done | grep -q yes || return 1
    done
}

if [ -n "${STRATA_CUDA_LIBS:-}" ]; then
    # bin/strata opens the libraries from these folders itself (and NVRTC's builtins next to
    # NVRTC); on LD_LIBRARY_PATH too, so that whatever a library opens by soname alone is found
    # (NVRTC 13.0.x's libnvrtc-builtins is one such).
    LD_LIBRARY_PATH="$STRATA_CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    # Where they usually are first (Python packages, toolkits), the whole disk only if needed.
    likely=$(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
    found=$(search $likely /usr/local/cuda* /usr/lib/x86_64-linux-gnu /usr/lib64 /opt 2>/dev/null)
    complete "$found" || found=$(search /)
    found=$(echo "$found" | paste -sd: -)
    [ -n "$found" ] && LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/strata" "$@"
