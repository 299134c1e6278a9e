"""The paper's whole pipeline on a GLUE task: fine-tune → find tickets → sample random/bad/super → evaluate →
re-fine-tune → report → push. Used by `recipes/lottery_glue.py` and `hf-lottery run` / `hf-lottery demo`.

Exports are loaded on first use, so parsing a command line does not import torch.
"""

from __future__ import annotations

from .. import lazy_exports


_EXPORTS = {
    "KINDS": "config",
    "METHODS": "config",
    "PAPER_SEEDS": "config",
    "STAGES": "config",
    "PipelineConfig": "config",
    "RunSettings": "config",
    "make_parser": "config",
    "parse_run_args": "config",
    "RunLayout": "layout",
    "build_report": "report",
    "run_pipeline": "runner",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
