"""Inference latency of onnxruntime vs torch, for the dense model and the compacted one (on the CPU)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.workloads import Workload, ticket_for


def bench_onnx(w: Workload, repeats: int, interleaved: Callable[..., dict[str, float]], keep: float = 0.5) -> dict:
    """Median latency of one batch through torch and through onnxruntime (same threads), dense and compacted."""
    try:
        import onnxruntime
    except ImportError as err:
        return {"skipped": f"onnxruntime is not installed ({err}); pip install 'hf-lottery[onnx]'"}
    from hf_lottery import compact_model, export_onnx
    from hf_lottery.models.onnx_export import uses_token_type_ids

    dense = w.fresh_model().cpu().eval()
    compact = compact_model(dense, ticket_for(dense, heads=keep, mlps=keep, weights=None))
    batch = {k: v.cpu() for k, v in w.batches[0].items() if k in ("input_ids", "attention_mask")}
    if uses_token_type_ids(dense):
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    feeds = {k: v.numpy() for k, v in batch.items()}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    scratch = Path(tempfile.mkdtemp(prefix="hf_lottery_bench_onnx_"))
    variants: dict[str, Any] = {}
    errors = {}
    for name, model in (("dense", dense), ("compact", compact)):
        path = export_onnx(model, scratch / name)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            expected = model(**batch).logits.numpy()
        errors[name] = float(abs(session.run(None, feeds)[0] - expected).max())

        def run_torch(m=model):
            with torch.no_grad():
                m(**batch)

        variants[f"torch_{name}"] = run_torch
        variants[f"onnxruntime_{name}"] = lambda s=session: s.run(None, feeds)
    t = interleaved(variants, repeats)
    return {
        "device": f"CPU ({torch.get_num_threads()} threads)",
        "kept": keep,
        **{
            name: {
                "torch_s": t[f"torch_{name}"],
                "onnxruntime_s": t[f"onnxruntime_{name}"],
                "onnxruntime_speedup": t[f"torch_{name}"] / t[f"onnxruntime_{name}"],
                "max_abs_logit_error": errors[name],
            }
            for name in ("dense", "compact")
        },
        "compact_vs_dense_onnxruntime": t["onnxruntime_dense"] / t["onnxruntime_compact"],
    }
