"""Peak resident memory of one pass, measured in a fresh process: python benchmarks/memory_probe.py MODE [--quick].

MODE is "importance" (hf-lottery's importance pass) or "forward_backward" (a plain training forward+backward).
Prints one JSON line: baseline (after loading model and data) and peak RSS in MB.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory cannot be measured on this system.")


def reset_peak() -> None:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS, so loading does not count as the peak."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def main() -> None:
    from benchmarks.workloads import make_workload, plain_forward_backward
    from hf_lottery import compute_importance

    mode, quick = sys.argv[1], "--quick" in sys.argv
    workload = make_workload(quick)
    if mode == "importance":  # warm-up: first-call allocations are not part of either pass
        compute_importance(workload.model, workload.batches[:1], progress=False)
    else:
        plain_forward_backward(workload.model, workload.batches[:1])
    import gc

    gc.collect()
    baseline = status_mb("VmRSS")
    reset_peak()
    if mode == "importance":
        compute_importance(workload.model, workload.batches, progress=False)
    elif mode == "forward_backward":
        plain_forward_backward(workload.model, workload.batches)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use importance or forward_backward")
    peak = status_mb("VmHWM")
    print(json.dumps({"mode": mode, "baseline_mb": baseline, "peak_mb": peak}))


if __name__ == "__main__":
    main()
