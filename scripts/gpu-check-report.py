#!/usr/bin/env python3
"""Assembles $OUT/gpu-check.json from the files scripts/gpu-check.sh wrote (standard library only).

    python3 scripts/gpu-check-report.py OUT_DIR gpu|no-gpu

Prints the Strata/PyTorch table (images/s per model and batch; Strata TF32 and strict against
PyTorch TF32 NCHW and channels-last) and the loss curves.
"""
import glob
import json
import os
import re
import sys


def last_json(path):
    """The last line of a text file that parses as a JSON object, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def curve(directory):
    rows = []
    try:
        with open(os.path.join(directory, "metrics.jsonl")) as f:
            for line in f:
                m = json.loads(line)
                rows.append({k: m.get(k) for k in ("epoch", "trainLoss", "trainAccuracy", "validationLoss",
                                                   "validationAccuracy", "seconds", "imagesPerSecond")})
    except (OSError, ValueError):
        return None
    summary = load(os.path.join(directory, "summary.json")) or {}
    return {"epochs": rows, "testAccuracy": summary.get("testAccuracy"), "testLoss": summary.get("testLoss")}


def main():
    out, mode = sys.argv[1], sys.argv[2]
    report = {"gpu": mode == "gpu", "steps": []}
    try:
        with open(os.path.join(out, "steps.jsonl")) as f:
            report["steps"] = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    try:
        with open(os.path.join(out, "info.txt")) as f:
            report["info"] = f.read()
    except OSError:
        pass
    if mode != "gpu":
        report["stopped"] = next((s.get("reason") for s in report["steps"] if s.get("status") == "unavailable"), None)
        with open(os.path.join(out, "gpu-check.json"), "w") as f:
            json.dump(report, f, indent=1)
        return 0

    for suffix in ("", "-nhwc", "-nhwc-pbn", "-bf16", "-fp16"):   # default layout, nhwc, nhwc + persistent BN, precisions
        if not os.path.exists(os.path.join(out, f"selftest{suffix}.txt")):
            continue
        selftest = os.path.join(out, f"selftest{suffix}.txt")
        if os.path.exists(selftest):
            key = "selftest" + suffix.replace("-", "_")
            text = open(selftest).read()
            m = re.search(r"(\d+) passed, (\d+) failed", text)
            report[key] = {"passed": int(m.group(1)), "failed": int(m.group(2))} if m else None
            report[key + "_failures"] = [l for l in text.splitlines() if "FAIL" in l][:50]

    # Start-up (issue 25's second round): the kernel cache cold and warm, NVRTC's builtins found
    # by the loader alone.
    def wall_ms(name):
        try:
            m = re.findall(r"^wall_ms: (\d+)$", open(os.path.join(out, name + ".txt")).read(), re.M)
        except OSError:
            return None
        return int(m[-1]) if m else None
    status = {s.get("step"): s.get("status") for s in report["steps"]}
    try:
        files = open(os.path.join(out, "kernel-cache-files.txt")).read().splitlines()
    except OSError:
        files = None
    report["kernel_cache"] = {"cold_ms": wall_ms("kernel-cache-cold"), "warm_ms": wall_ms("kernel-cache-warm"),
                              "cold": status.get("kernel-cache-cold"), "warm": status.get("kernel-cache-warm"),
                              "files": files}
    report["nvrtc_builtins_bare"] = status.get("nvrtc-builtins-bare", "not run")
    k = report["kernel_cache"]
    print(f"kernel cache: strata info {k['cold_ms']} ms with an empty cache, {k['warm_ms']} ms with it filled; "
          f"bin/strata with STRATA_CUDA_LIBS only (NVRTC builtins): {report['nvrtc_builtins_bare']}")

    strata = []
    for path in sorted(glob.glob(os.path.join(out, "bench-train", "*.txt"))):
        name = os.path.basename(path)[:-4]
        model, batch, math = re.match(r"(.+)-b(\d+)-(tf32|strict)$", name).groups()
        r = last_json(path) or {"error": "no result"}
        r.update(model=model, batch_size=int(batch), math=math)
        strata.append(r)
    report["strata_bench_train"] = strata
    def bench_folder(folder, **extra):
        rows = []
        for path in sorted(glob.glob(os.path.join(out, folder, "*.txt"))):
            name = os.path.basename(path)[:-4]
            model, batch, math = re.match(r"(.+)-b(\d+)-(tf32|strict)$", name).groups()
            r = last_json(path) or {"error": "no result"}
            r.update(model=model, batch_size=int(batch), math=math, **extra)
            rows.append(r)
        return rows
    nhwc = bench_folder("bench-train-nhwc", layout="nhwc")
    report["strata_bench_train_nhwc"] = nhwc
    nhwc_pbn = bench_folder("bench-train-nhwc-pbn", layout="nhwc", batch_norm="persistent")
    report["strata_bench_train_nhwc_persistent_bn"] = nhwc_pbn
    nhwc_cudnn = bench_folder("bench-train-nhwc-cudnn", layout="nhwc", batch_norm="cudnn")
    report["strata_bench_train_nhwc_cudnn_bn"] = nhwc_cudnn
    nofuse = bench_folder("bench-train-nhwc-nofuse", layout="nhwc", fusion="off")
    report["strata_bench_train_nhwc_no_fusion"] = nofuse
    upload_sync = bench_folder("bench-train-upload-sync", layout="nchw", upload="sync")
    report["strata_bench_train_upload_sync"] = upload_sync
    for r in upload_sync:
        ring = next((n.get("images_per_second") for n in strata if n.get("model") == r["model"]
                     and n.get("batch_size") == r["batch_size"] and n.get("math") == r["math"]), None)
        print(f"{r['model']} b{r['batch_size']} nchw images/s: staging ring {ring}, "
              f"STRATA_CUDA_UPLOAD=sync {r.get('images_per_second')}")
    for r in nofuse:
        fused = next((n.get("images_per_second") for n in nhwc if n.get("model") == r["model"]
                      and n.get("batch_size") == r["batch_size"]), None)
        print(f"{r['model']} b{r['batch_size']} nhwc images/s: fused {fused}, STRATA_FUSE=off {r.get('images_per_second')}")
    for r in nhwc_cudnn:
        ours = next((n.get("images_per_second") for n in nhwc if n.get("model") == r["model"]
                     and n.get("batch_size") == r["batch_size"]), None)
        print(f"{r['model']} b{r['batch_size']} nhwc images/s: our batch norm {ours}, cuDNN's {r.get('images_per_second')}")

    # bench train --profile (bench-profile/MODEL-bBATCH-LAYOUT.txt): ms per call of the main kernels.
    profiles = {}
    for path in sorted(glob.glob(os.path.join(out, "bench-profile", "*.txt"))):
        rows = {}
        for line in open(path).read().splitlines():
            cells = line.split()
            # kernel, calls, total ms, %, ms/call[, GFLOP/s]
            if len(cells) >= 5 and cells[1].isdigit():
                try:
                    rows[cells[0]] = {"calls": int(cells[1]), "total_ms": float(cells[2]), "ms_per_call": float(cells[4]),
                                      "gflops": float(cells[5]) if len(cells) > 5 else None}
                except ValueError:
                    pass
        profiles[os.path.basename(path)[:-4]] = {"kernels": rows,
                                                 "text": [l for l in open(path).read().splitlines()][-40:]}
    report["profiles"] = profiles
    if profiles:
        names = sorted(profiles)
        print("ms per call (bench train --profile, 20 steps): " + ", ".join(names))
        for kernel in ("conv2dForward", "conv2dBackwardFilter", "conv2dBackwardData", "batchNormForwardTraining",
                       "batchNormBackward", "biasBackward"):
            cells = []
            for n in names:
                k = profiles[n]["kernels"].get(kernel)
                cells.append(f"{k['ms_per_call']:.3f}" if k else "-")
            print(f"  {kernel:26} " + "  ".join(f"{c:>12}" for c in cells))

    torch_results = []
    for name in ("torch-bench.json", "torch-bench-cnn.json"):
        t = load(os.path.join(out, name))
        if t:
            report.setdefault("torch", {k: v for k, v in t.items() if k != "results"})
            torch_results += t.get("results", [])
    report["torch_bench_train"] = torch_results

    def ips(rows, **key):
        for r in rows:
            if all(r.get(k) == v for k, v in key.items()) and "images_per_second" in r:
                return r["images_per_second"]
        return None

    ratios = []
    print(f"{'model':10} {'batch':>5} {'strata tf32':>12} {'strata strict':>14} {'torch nchw':>11} {'torch cl':>9} "
          f"{'tf32/nchw':>9} {'tf32/cl':>8} {'strict/nchw':>11} {'nhwc tf32':>10} {'nhwc/cl':>8} {'nhwc+pBN':>9}")
    for model in ("resnet20", "resnet56", "vgg16", "cnn"):
        for batch in (32, 128):
            s_tf32 = ips(strata, model=model, batch_size=batch, math="tf32")
            s_strict = ips(strata, model=model, batch_size=batch, math="strict")
            t_nchw = ips(torch_results, model=model, batch_size=batch, layout="nchw")
            t_cl = ips(torch_results, model=model, batch_size=batch, layout="channels_last")
            s_nhwc = ips(nhwc, model=model, batch_size=batch, math="tf32")
            s_pbn = ips(nhwc_pbn, model=model, batch_size=batch, math="tf32")
            ratio = lambda a, b: a / b if a and b else None
            row = {"model": model, "batch_size": batch, "strata_tf32": s_tf32, "strata_strict": s_strict,
                   "torch_tf32_nchw": t_nchw, "torch_tf32_channels_last": t_cl,
                   "strata_tf32_over_torch_nchw": ratio(s_tf32, t_nchw),
                   "strata_tf32_over_torch_channels_last": ratio(s_tf32, t_cl),
                   "strata_strict_over_torch_tf32_nchw": ratio(s_strict, t_nchw),
                   "strata_nhwc_tf32": s_nhwc,
                   "strata_nhwc_tf32_over_torch_channels_last": ratio(s_nhwc, t_cl),
                   "strata_nhwc_persistent_bn_tf32": s_pbn}
            ratios.append(row)
            f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
            print(f"{model:10} {batch:>5} {f(s_tf32):>12} {f(s_strict):>14} {f(t_nchw):>11} {f(t_cl):>9} "
                  f"{f(row['strata_tf32_over_torch_nchw'], 2):>9} {f(row['strata_tf32_over_torch_channels_last'], 2):>8} "
                  f"{f(row['strata_strict_over_torch_tf32_nchw'], 2):>11} {f(s_nhwc):>10} "
                  f"{f(row['strata_nhwc_tf32_over_torch_channels_last'], 2):>8} {f(s_pbn):>9}")
    report["ratios"] = ratios

    precision_section(out, report)

    report["training"] = {d: curve(os.path.join(out, f"train-{d}")) for d in ("cuda", "cpu", "cuda-nhwc")}
    for d, c in report["training"].items():
        if c:
            losses = ", ".join(f"{e['trainLoss']:.4f}" for e in c["epochs"])
            print(f"resnet20 on {d}: train loss per epoch {losses}; test accuracy {c['testAccuracy']}")
    report["check_load"] = load(os.path.join(out, "check-load.json"))
    report["check_load_nhwc"] = load(os.path.join(out, "check-load-nhwc.json"))
    grow_log = os.path.join(out, "grow-cuda.txt")
    report["grow"] = {
        "insertions": sum("inserting sub-network" in l for l in open(grow_log)) if os.path.exists(grow_log) else None,
        "summary": load(os.path.join(out, "grow-cuda", "summary.json")),
        "curve": curve(os.path.join(out, "grow-cuda")),
    }
    report["bench_ops"] = last_json(os.path.join(out, "bench-ops.txt"))
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


def precision_section(out, report):
    """GPU_CHECK_PRECISION=1: Strata bf16 / fp16 / TF32 (bench-train-precision/MODEL-bBATCH-P.txt)
    against PyTorch eager AMP (torch-amp-P-*.json: best of NCHW and channels-last) and
    torch.compile (torch-compile-bf16.json)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "bench-train-precision", "*.txt"))):
        m = re.match(r"(.+)-b(\d+)-(tf32|bf16|fp16)$", os.path.basename(path)[:-4])
        if not m:
            continue
        r = last_json(path) or {"error": "no result"}
        r.update(model=m.group(1), batch_size=int(m.group(2)), precision=m.group(3))
        rows.append(r)
    if not rows:
        return
    torch_rows = []
    for path in sorted(glob.glob(os.path.join(out, "torch-amp-*.json")) + glob.glob(os.path.join(out, "torch-compile-*.json"))):
        t = load(path)
        if not t:
            continue
        name = os.path.basename(path)[:-5]
        amp = "bf16" if "bf16" in name else "fp16"
        for r in t.get("results", []):
            torch_rows.append(dict(r, amp=r.get("amp", amp), compiled=r.get("compile", name.startswith("torch-compile"))))
    report["strata_bench_train_precision"] = rows
    report["torch_bench_train_amp"] = torch_rows

    def best(rows_, **key):
        values = [r["images_per_second"] for r in rows_ if "images_per_second" in r
                  and all(r.get(k) == v for k, v in key.items())]
        return max(values) if values else None

    table = []
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
    print(f"{'model':10} {'batch':>5} {'tf32':>9} {'bf16':>9} {'fp16':>9} {'torch amp bf16':>15} {'torch amp fp16':>15} "
          f"{'compile bf16':>13} {'bf16/amp':>9} {'fp16/amp':>9}")
    shapes = sorted({(r["model"], r["batch_size"]) for r in rows}, key=lambda s: (s[1] < 128, s))
    for model, batch in shapes:
        s = {p: best(rows, model=model, batch_size=batch, precision=p) for p in ("tf32", "bf16", "fp16")}
        t = {p: best(torch_rows, model=model, batch_size=batch, amp=p, compiled=False) for p in ("bf16", "fp16")}
        c = best(torch_rows, model=model, batch_size=batch, amp="bf16", compiled=True)
        ratio = lambda a, b: a / b if a and b else None
        row = {"model": model, "batch_size": batch, "strata_tf32": s["tf32"], "strata_bf16": s["bf16"],
               "strata_fp16": s["fp16"], "torch_amp_bf16": t["bf16"], "torch_amp_fp16": t["fp16"],
               "torch_compile_bf16": c, "bf16_over_torch_amp": ratio(s["bf16"], t["bf16"]),
               "fp16_over_torch_amp": ratio(s["fp16"], t["fp16"])}
        table.append(row)
        print(f"{model:10} {batch:>5} {f(s['tf32']):>9} {f(s['bf16']):>9} {f(s['fp16']):>9} {f(t['bf16']):>15} "
              f"{f(t['fp16']):>15} {f(c):>13} {f(row['bf16_over_torch_amp'], 2):>9} {f(row['fp16_over_torch_amp'], 2):>9}")
    report["precision_ratios"] = table


if __name__ == "__main__":
    sys.exit(main())
