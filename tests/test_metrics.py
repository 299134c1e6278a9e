import math

import numpy as np
import pytest

from hf_lottery.tasks.metrics import constant_predictor_score, get_task_metric, resolve_metric


def logits(predicted, num_classes=2):
    out = np.zeros((len(predicted), num_classes), dtype=np.float32)
    out[np.arange(len(predicted)), predicted] = 1.0
    return out


def test_accuracy_and_f1_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    predicted = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    # tp = 3, fp = 1, fn = 1, tn = 3
    values = get_task_metric("MRPC").compute(logits(predicted), labels)
    assert values["accuracy"] == 6 / 8
    assert values["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert values["score"] == values["accuracy"]
    assert values["accuracy_f1_mean"] == pytest.approx((0.75 + 0.75) / 2)
    assert get_task_metric("qqp").compute(logits(predicted), labels)["f1"] == values["f1"]


def test_matthews_correlation_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 1])
    predicted = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    tp, tn, fp, fn = 4, 3, 1, 2
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    values = get_task_metric("CoLA").compute(logits(predicted), labels)
    assert values["matthews_correlation"] == pytest.approx(expected)
    assert values["score"] == values["matthews_correlation"]
    # a constant prediction makes MCC undefined: 0, not NaN
    assert get_task_metric("cola").score(logits(np.ones(10, dtype=int)), labels) == 0.0


def test_pearson_spearman_by_hand():
    predicted = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    labels = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    dp, dl = predicted - predicted.mean(), labels - labels.mean()
    pearson = (dp * dl).sum() / math.sqrt((dp**2).sum() * (dl**2).sum())
    # ranks: predicted 1..5, labels 2,1,4,3,5 -> d = -1,1,-1,1,0 -> spearman = 1 - 6*4/(5*24)
    spearman = 1 - 6 * 4 / (5 * (25 - 1))
    values = get_task_metric("STS-B").compute(predicted[:, None], labels)
    assert values["pearson"] == pytest.approx(pearson)
    assert values["spearmanr"] == pytest.approx(spearman)
    assert values["score"] == pytest.approx((pearson + spearman) / 2)
    assert get_task_metric("stsb").score(np.full(5, 3.0), labels) == 0.0


def test_three_class_accuracy_and_constant_baselines():
    labels = np.array([0, 1, 2, 2, 2, 1])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    assert get_task_metric("mnli").score(logits(predicted, 3), labels) == 4 / 6
    assert constant_predictor_score(resolve_metric("mnli"), np.zeros((6, 3)), labels) == 3 / 6
    assert constant_predictor_score(resolve_metric("cola"), np.zeros((6, 3)), labels) == 0.0
    assert constant_predictor_score(resolve_metric("stsb"), np.zeros((6, 1)), labels.astype(float)) == 0.0


def test_task_names_and_errors():
    for name in ("SST-2", "sst2", "sst-2", "Sst_2"):
        assert get_task_metric(name).task == "sst2"
    assert get_task_metric("MNLI-MM").task == "mnli-mm"
    with pytest.raises(ValueError, match="choose one of"):
        get_task_metric("squad")
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        get_task_metric("rte").compute(logits(np.array([0, 1, 1])), np.array([0, 1]))


def test_glue_metric_is_an_offline_evaluate_metric_with_the_task_metrics_values():
    evaluate = pytest.importorskip("evaluate")
    from hf_lottery.tasks.metrics import glue_metric

    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 1])
    predicted = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    mrpc = glue_metric("MRPC")
    assert isinstance(mrpc, evaluate.Metric)
    task = get_task_metric("mrpc").compute(predicted, labels)
    assert mrpc.compute(predictions=predicted, references=labels) == {"accuracy": task["accuracy"], "f1": task["f1"]}
    cola = glue_metric("cola").compute(predictions=predicted, references=labels)
    assert cola == {"matthews_correlation": get_task_metric("cola").score(predicted, labels)}
    scores, gold = np.array([1.0, 2.0, 3.0, 4.0, 10.0]), np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    stsb = glue_metric("stsb").compute(predictions=scores, references=gold)
    values = get_task_metric("stsb").compute(scores, gold)
    assert stsb == pytest.approx({"pearson": values["pearson"], "spearmanr": values["spearmanr"]}, rel=1e-6)
    # batches added one by one (as in an evaluation loop) give the same result
    metric = glue_metric("sst2")
    for start in range(0, 10, 4):
        metric.add_batch(predictions=predicted[start : start + 4], references=labels[start : start + 4])
    assert metric.compute() == {"accuracy": 7 / 10}


def test_glue_metric_in_a_trainer_compute_metrics_and_as_a_search_metric():
    pytest.importorskip("evaluate")
    import torch
    from transformers import Trainer, TrainingArguments

    from hf_lottery import find_structured_ticket
    from hf_lottery.tasks.metrics import glue_metric

    from .conftest import tiny_batch, tiny_bert

    metric = glue_metric("mrpc")

    def compute_metrics(eval_prediction):
        return metric.compute(predictions=eval_prediction.predictions.argmax(-1), references=eval_prediction.label_ids)

    examples = [{k: v[i] for k, v in tiny_batch(8, seed=2).items()} for i in range(8)]
    model = tiny_bert()
    args = TrainingArguments(output_dir="unused", report_to="none", per_device_eval_batch_size=4, use_cpu=True,
                             save_strategy="no")  # fmt: skip
    results = Trainer(model=model, args=args, eval_dataset=examples, compute_metrics=compute_metrics).evaluate()
    batch = tiny_batch(8, seed=2)
    with torch.no_grad():
        logits = model(**batch).logits.numpy()
    expected = get_task_metric("mrpc").compute(logits, batch["labels"].numpy())
    assert results["eval_accuracy"] == expected["accuracy"] and results["eval_f1"] == expected["f1"]
    ticket = find_structured_ticket(model, [batch], metric, structured_max_steps=1, on_degenerate="ignore",
                                    progress=False)  # fmt: skip
    assert ticket.metrics["metric_name"] == "accuracy"
    assert ticket.metrics["full_metric"] == expected["accuracy"]


def test_importing_metrics_does_not_import_evaluate():
    import subprocess
    import sys

    code = "import sys, hf_lottery.tasks.metrics, hf_lottery.search.stop_rule; print('evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_resolve_metric_and_metric_names():
    from hf_lottery.tasks.metrics import metric_from_compute_metrics, metric_name, resolve_metric

    assert resolve_metric(lambda p, y: {"score": 0.25})(np.zeros((1, 2)), np.zeros(1)) == 0.25
    with pytest.raises(ValueError, match="must include 'score'"):
        resolve_metric(lambda p, y: {"acc": 1.0})(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(TypeError, match="`metric` must be"):
        resolve_metric(42)
    assert metric_name("stsb") == "pearson_spearman_mean"
    assert metric_name(metric_from_compute_metrics(lambda ep: {"f1": 1.0}, "f1")) == "f1"
    assert metric_name(np.mean) is None
