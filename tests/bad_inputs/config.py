"""Bad search settings: every one is refused when the `TicketSearchConfig` is built."""

from __future__ import annotations

import contextlib
import io

from hf_lottery.config import TicketSearchConfig, resolve_search_config
from hf_lottery.pipeline.config import make_parser, parse_run_args

from . import BadInput


TOKEN = "hf_FileTokenNeverShown0123456789"


def _config(**kwargs):
    return lambda tmp_path: TicketSearchConfig(**kwargs)


def _file(text: str | None):
    """Exit status and last stderr line of a run parsed with ``--config run.yaml`` holding `text` (None: no file)."""

    def call(tmp_path):
        path, err = tmp_path / "run.yaml", io.StringIO()
        if text is not None:
            path.write_text(text)
        try:
            with contextlib.redirect_stderr(err):
                parse_run_args(["--config", str(path), "--task_name", "demo", "--output_dir", str(tmp_path / "o")])
        except SystemExit as exit_info:
            assert TOKEN not in err.getvalue()
            raise SystemExit(f"{exit_info.code}: {err.getvalue().strip().splitlines()[-1]}") from None

    return call


CASES = [
    BadInput(
        "config-threshold-above-one", "search", _config(threshold=1.5), ValueError, r"`threshold` must be in \(0, 1\]"
    ),
    BadInput("config-threshold-zero", "search", _config(threshold=0), ValueError, r"`threshold`"),
    BadInput("config-threshold-negative", "search", _config(threshold=-1), ValueError, r"`threshold`"),
    BadInput("config-threshold-nan", "search", _config(threshold=float("nan")), ValueError, r"`threshold`"),
    BadInput(
        "config-head-fraction-zero",
        "search",
        _config(head_fraction=0),
        ValueError,
        r"`head_fraction` must be in \(0, 1\]",
    ),
    BadInput("config-head-fraction-two", "search", _config(head_fraction=2), ValueError, r"`head_fraction`"),
    BadInput(
        "config-head-fraction-nan", "search", _config(head_fraction=float("nan")), ValueError, r"`head_fraction`"
    ),
    BadInput(
        "config-prune-fraction-one",
        "search",
        _config(magnitude_prune_fraction=1.0),
        ValueError,
        r"`magnitude_prune_fraction`",
    ),
    BadInput("config-max-steps-zero", "search", _config(magnitude_max_steps=0), ValueError, r"`magnitude_max_steps`"),
    BadInput(
        "config-max-steps-float", "search", _config(magnitude_max_steps=2.5), ValueError, r"`magnitude_max_steps`"
    ),
    BadInput(
        "config-search-samples-zero", "search", _config(max_search_samples=0), ValueError, r"`max_search_samples`"
    ),
    BadInput(
        "config-search-samples-negative", "search", _config(max_search_samples=-5), ValueError, r"`max_search_samples`"
    ),
    BadInput(
        "config-search-data-typo", "search", _config(search_data="test"), ValueError, r"`search_data` must be one of"
    ),
    BadInput("config-on-degenerate-typo", "search", _config(on_degenerate="skip"), ValueError, r"`on_degenerate`"),
    BadInput("config-batch-size-zero", "search", _config(search_batch_size=0), ValueError, r"`search_batch_size`"),
    BadInput("config-held-out-fractional-count", "search", _config(held_out_size=2.5), ValueError, r"`held_out_size`"),
    BadInput("config-passes-three", "search", _config(passes_per_step=3), ValueError, r"`passes_per_step`"),
    BadInput("config-target-sparsity-one", "search", _config(target_sparsity=1.0), ValueError, r"`target_sparsity`"),
    BadInput("config-paper-compat-string", "search", _config(paper_compat="yes"), ValueError, r"`paper_compat`"),
    BadInput(
        "config-unknown-keyword",
        "search",
        lambda tmp_path: resolve_search_config(thresold=0.8),
        TypeError,
        r"thresold",
    ),
    BadInput(
        "config-parser-default-not-a-flag",  # a setting a newer transformers renamed must not vanish silently
        "search",
        lambda tmp_path: make_parser(defaults={"group_by_length": True}),
        TypeError,
        r"\['group_by_length'\].*does not offer",
    ),
    BadInput("config-file-misspelt-key", "search", _file("learning_rte: 1e-4\nthreshold: 0.8\n"), SystemExit,
             r"^2: .*--config .*run\.yaml: unknown setting\(s\) learning_rte; keys are flag names \(--help\)"),
    BadInput("config-file-misspelt-secret-not-echoed", "search", _file(f"hub_tokn: {TOKEN}\n"), SystemExit,
             r"^2: .*unknown setting\(s\) hub_tokn;"),
    BadInput("config-file-not-a-mapping", "search", _file("- learning_rate\n"), SystemExit,
             r"^2: .*unknown setting\(s\) \(no mapping\)"),
    BadInput("config-file-missing", "search", _file(None), SystemExit,
             r"^2: .*run\.yaml: cannot read it as YAML \(FileNotFoundError\)"),
    BadInput("config-file-bad-value", "search", _file("threshold: 1.5\n"), SystemExit, r"^2: .*--threshold"),
]  # fmt: skip
