"""The paper's whole pipeline on a GLUE task: fine-tune → find tickets → sample random/bad/super → evaluate →
re-fine-tune → report → push. Used by `recipes/lottery_glue.py` and `hf-lottery run` / `hf-lottery demo`."""

from .config import KINDS, METHODS, PAPER_SEEDS, STAGES, PipelineConfig, config_from_args, make_parser
from .report import build_report
from .runner import run_pipeline


__all__ = [
    "KINDS",
    "METHODS",
    "PAPER_SEEDS",
    "STAGES",
    "PipelineConfig",
    "build_report",
    "config_from_args",
    "make_parser",
    "run_pipeline",
]
