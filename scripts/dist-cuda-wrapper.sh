#!/bin/sh
# dist/cuda/strata: runs bin/strata (static Swift runtime, CUDA trait) on a Linux machine with
# an NVIDIA driver and no Swift. bin/strata opens the CUDA libraries itself when a GPU is first
# used: from $STRATA_CUDA_LIBS (colon-separated directories) when it is set; otherwise this
# wrapper looks for them (NVIDIA's pip wheels, e.g. PyTorch's, or a toolkit) and puts their
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

if [ -z "${STRATA_CUDA_LIBS:-}" ]; then
    # Where they usually are first (Python packages, toolkits), the whole disk only if needed.
    likely=$(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
    found=$(search $likely /usr/local/cuda* /usr/lib/x86_64-linux-gnu /usr/lib64 /opt 2>/dev/null)
    complete "$found" || found=$(search /)
    found=$(echo "$found" | paste -sd: -)
    [ -n "$found" ] && LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The shipped OpenBLAS (0.3.21) does not know recent server CPUs: on the first GPU machine
# (2026-11-29) it fell back to its SSE3 "Prescott" kernels (sgemm 156 GFLOP/s on 16 threads).
# Its core type can only be chosen before it loads, so pick it here from the CPU's flags.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
    flags=" $(sed -n 's/^flags[[:space:]]*:\(.*\)/\1/p' /proc/cpuinfo | head -n 1) "
    has() { case "$flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
    if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
        export OPENBLAS_CORETYPE=SkylakeX
    elif has avx2 && has fma; then
        export OPENBLAS_CORETYPE=Haswell
    fi
fi
exec "$here/bin/strata" "$@"
