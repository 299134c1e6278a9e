"""Real-weight runs on the packaged MiniLM (minutes on 2 CPU cores): python -m pytest -m slow."""

import pytest

from hf_lottery.pipeline import RunSettings, run_pipeline

from .conftest import GLUE_DIR, minilm_path, require_shared


pytestmark = pytest.mark.slow


def test_demo_pipeline_on_minilm_beats_the_majority_class(tmp_path):
    minilm_path()
    config = RunSettings.from_kwargs(
        task_name="demo", output_dir=str(tmp_path), seeds=[42], learning_rate=2e-4, num_train_epochs=2.0,
        max_train_samples=800, max_seq_length=64, kinds=["good", "random"],
        stages=["finetune", "search", "sample", "evaluate", "retrain", "report"],
    )  # fmt: skip
    report = run_pipeline(config)
    import json

    results = json.loads((report.parent / "results.json").read_text())
    full = results["full"]["42"]["score"]
    assert full > 0.75  # majority class: 0.5
    assert results["pruned"]["42"]["structured/good"]["score"] >= 0.9 * full - 1e-9


def test_sst2_structured_search_on_real_glue(tmp_path):
    require_shared(GLUE_DIR / "SST-2")
    config = RunSettings.from_kwargs(
        task_name="sst2", data_dir=str(GLUE_DIR / "SST-2"), output_dir=str(tmp_path), seeds=[42], learning_rate=5e-5,
        num_train_epochs=1.0, max_train_samples=2000, stages=["finetune", "search"], methods=["structured"],
        on_degenerate="raise",
    )  # fmt: skip
    run_pipeline(config)
    from hf_lottery import LotteryTicket

    ticket = LotteryTicket.from_pretrained(tmp_path / "seed_42" / "tickets" / "structured" / "good")
    assert ticket.metrics["full_metric"] > 0.75  # majority class: 0.509
    assert ticket.metrics["metric"] >= 0.9 * ticket.metrics["full_metric"]
    assert ticket.summary()["kept_heads"] < 72
