#!/usr/bin/env bash
# Installs the CUDA headers and libraries Strata's `CUDA` trait builds against, from NVIDIA's PyPI
# wheels (no CUDA toolkit, no root), into a prefix OUTSIDE the source tree:
#
#   scripts/install-cuda.sh [--cuda 13|12] [--prefix DIR]
#
#   --cuda 13   (default) CUDA 13.0.x: Turing (sm_75) and newer. Pinned to 13.0.x because the lent
#               GPU machines run driver 580 (CUDA 13.0); newer libraries may need a newer driver.
#   --cuda 12   CUDA 12.9 (`-cu12` wheels): for Pascal/Volta (sm_60/sm_70), which CUDA 13 dropped.
#   --prefix    default $STRATA_CUDA_PREFIX, else $HOME/.cache/strata/cuda13 (or cuda12).
#
# Result:
#   PREFIX/include/            cuda_runtime.h, crt/, nv/, cublas_v2.h, nvrtc.h, cudnn*.h
#   PREFIX/lib/                libcudart.so.13 ... plus unversioned links (libcudart.so -> .so.13)
#   PREFIX/lib/pkgconfig/ccuda.pc   for SwiftPM's `pkgConfig: "ccuda"`
#   PREFIX/wheels/             the downloaded wheels (kept so a rerun downloads nothing)
#
# Then:  export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#        swift build --traits CUDA -Xlinker -rpath -Xlinker PREFIX/lib
# (SwiftPM ignores -Wl,-rpath in .pc files: pass the rpath as above or set LD_LIBRARY_PATH.)
#
# No libcuda.so is needed at build time: kernels are compiled by NVRTC and loaded through the
# runtime API (cudaLibraryLoadData), which finds the driver at run time.
#
# Idempotent: a prefix whose marker file lists the same pinned wheels is left as it is.
set -euo pipefail

cuda=13
prefix="${STRATA_CUDA_PREFIX:-}"
while (($#)); do
    case "$1" in
        --cuda) cuda="${2:?--cuda needs 13 or 12}"; shift 2 ;;
        --cuda=*) cuda="${1#*=}"; shift ;;
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-cuda.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# Exact pins, so that every machine builds against the same headers and a rerun is a no-op.
case "$cuda" in
    13) wheels=(
            nvidia-cuda-runtime==13.0.96
            nvidia-cuda-crt==13.0.88
            nvidia-cuda-cccl==13.0.85
            nvidia-cublas==13.0.2.14
            nvidia-cuda-nvrtc==13.0.88
            nvidia-cudnn-cu13==9.13.1.26
        ) ;;
    12) wheels=(
            nvidia-cuda-runtime-cu12==12.9.79
            nvidia-cuda-cccl-cu12==12.9.27
            nvidia-cuda-nvcc-cu12==12.9.86
            nvidia-cublas-cu12==12.9.1.4
            nvidia-cuda-nvrtc-cu12==12.9.86
            nvidia-cudnn-cu12==9.13.1.26
        ) ;;
    *) echo "install-cuda.sh: --cuda must be 13 or 12, not '$cuda'" >&2; exit 2 ;;
esac
prefix="${prefix:-$HOME/.cache/strata/cuda$cuda}"

# Refuse a prefix inside a git work tree: 2 GB of libraries must never be committed by accident.
if top=$(git -C "$(dirname "$prefix")" rev-parse --show-toplevel 2>/dev/null); then
    case "$(realpath -m "$prefix")/" in
        "$(realpath "$top")"/*)
            echo "install-cuda.sh: prefix $prefix is inside the git work tree $top; choose one outside it" >&2
            exit 2 ;;
    esac
fi

# Headers only: Strata opens the libraries at run time (Sources/CCudaLoader), so the binary
# starts without them. Rewritten on every run, so an older prefix gets the current file.
write_pkgconfig() {
    cat > "$prefix/lib/pkgconfig/ccuda.pc" <<EOF
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: ccuda
Description: CUDA $cuda runtime, cuBLAS, cuDNN 9 and NVRTC headers from NVIDIA's wheels, for Strata
Version: ${wheels[0]#*==}
Cflags: -I\${includedir}
Libs:
EOF
}

marker="$prefix/.strata-cuda-wheels"
want=$(printf '%s\n' "${wheels[@]}")
if [[ -f "$marker" && "$(cat "$marker")" == "$want" && -f "$prefix/lib/pkgconfig/ccuda.pc" ]]; then
    write_pkgconfig
    echo "CUDA $cuda already installed in $prefix"
    echo "export PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
    exit 0
fi

for tool in python3 unzip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install-cuda.sh: needs $tool" >&2; exit 1; }
done
python3 -m pip --version >/dev/null 2>&1 || { echo "install-cuda.sh: needs pip (python3 -m pip)" >&2; exit 1; }

mkdir -p "$prefix/wheels"
echo "Downloading ${#wheels[@]} wheels for CUDA $cuda into $prefix/wheels (about 1 GB the first time)..."
# --no-deps: the wheels' own dependencies are each other, pinned above.
# --only-binary/--platform: wheels for Linux x86_64 or aarch64, whatever this machine is.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$prefix/wheels" "${wheels[@]}"

stage="$prefix/.stage"
rm -rf "$stage" "$prefix/include" "$prefix/lib"
mkdir -p "$stage" "$prefix/include" "$prefix/lib/pkgconfig"
for spec in "${wheels[@]}"; do
    name="${spec%%==*}"; version="${spec#*==}"
    # Wheel file names use underscores: nvidia_cuda_runtime-13.0.96-py3-none-manylinux...whl
    file=$(ls "$prefix/wheels/${name//-/_}-${version}-"*.whl 2>/dev/null | head -n1 || true)
    [[ -n "$file" ]] || { echo "install-cuda.sh: no wheel for $spec in $prefix/wheels" >&2; exit 1; }
    unzip -q -o "$file" 'nvidia/*' -d "$stage"
done

# cu13 wheels share nvidia/cu13/{include,lib}; cuDNN has nvidia/cudnn/{include,lib}; the cu12
# wheels have one directory per component (nvidia/cuda_runtime, nvidia/cublas, ...).
# Merge them all with hard links (same file system, no second copy).
for dir in "$stage"/nvidia/*/; do
    [[ -d "$dir/include" ]] && cp -al "$dir/include/." "$prefix/include/"
    [[ -d "$dir/lib" ]] && cp -al "$dir/lib/." "$prefix/lib/"
done
rm -rf "$stage"

# The wheels ship only versioned sonames; `-lcudart` needs libcudart.so.
for lib in cudart cublas cublasLt cudnn nvrtc; do
    real=$(cd "$prefix/lib" && ls "lib$lib.so."* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | head -n1 || true)
    [[ -n "$real" ]] || { echo "install-cuda.sh: lib$lib.so.N missing after unpacking" >&2; exit 1; }
    ln -sfn "$real" "$prefix/lib/lib$lib.so"
done
for header in cuda_runtime.h crt/host_config.h nv/target cublas_v2.h nvrtc.h cudnn.h; do
    [[ -e "$prefix/include/$header" ]] || { echo "install-cuda.sh: $header missing after unpacking" >&2; exit 1; }
done

write_pkgconfig
printf '%s\n' "${wheels[@]}" > "$marker"

echo "CUDA $cuda installed in $prefix ($(du -sh "$prefix" | cut -f1) with the wheels)"
echo "export PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
echo "swift build --traits CUDA -Xlinker -rpath -Xlinker $prefix/lib"
