#!/usr/bin/env bash
# Layer fusion A/B in the per-kernel profile (bench/NOTES.md section 10): STRATA_FUSE=on, bn-relu and
# off alternating, ROUNDS rounds; per run the sum of the batch-norm, ReLU and add rows, all kernels
# (ms per measured epoch of 10 steps) and images/s.
#   bench/fuse-profile-ab.sh ROUNDS --model resnet20 --batch-size 128
export OMP_WAIT_POLICY=passive
rounds=$1; shift
for ((r = 1; r <= rounds; r++)); do
  for s in on bn-relu off; do
    STRATA_FUSE=$s .build/release/strata bench train "$@" --device cpu --threads 2 --profile > /tmp/prof-$s.txt
    ips=$(sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p' /tmp/prof-$s.txt)
    awk -v s=$s -v r=$r -v ips=$ips '$1 ~ /^(batchNorm|relu|add$)/ { bn += $3 } $1 == "all" { all = $4 } END { printf "round %d %-8s bn/relu/add %7.1f ms  all kernels %7.1f ms  share %4.1f%%  %s images/s\n", r, s, bn, all, 100*bn/all, ips }' /tmp/prof-$s.txt
  done
done
