import math

import numpy as np
import pytest

from hf_lottery.metrics import get_task_metric


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
    assert values["mcc"] == pytest.approx(expected)
    assert values["score"] == values["mcc"]
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
    assert values["spearman"] == pytest.approx(spearman)
    assert values["score"] == pytest.approx((pearson + spearman) / 2)
    assert get_task_metric("stsb").score(np.full(5, 3.0), labels) == 0.0


def test_three_class_accuracy_and_constant_baselines():
    labels = np.array([0, 1, 2, 2, 2, 1])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    assert get_task_metric("mnli").score(logits(predicted, 3), labels) == 4 / 6
    assert get_task_metric("mnli").constant_baseline(labels) == 3 / 6
    assert get_task_metric("cola").constant_baseline(labels) == 0.0
    assert get_task_metric("stsb").constant_baseline(labels) == 0.0


def test_task_names_and_errors():
    for name in ("SST-2", "sst2", "sst-2", "Sst_2"):
        assert get_task_metric(name).task == "sst2"
    assert get_task_metric("MNLI-MM").task == "mnli-mm"
    with pytest.raises(ValueError, match="choose one of"):
        get_task_metric("squad")
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        get_task_metric("rte").compute(logits(np.array([0, 1, 1])), np.array([0, 1]))
