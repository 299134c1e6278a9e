import numpy as np
import pytest
import torch

from hf_lottery.patterns import (
    PATTERNS,
    PatternClassifier,
    evaluate_classifier,
    extract_attention_maps,
    generate_synthetic_maps,
    normalize_label,
    pattern_survival_table,
    predict_head_patterns,
    read_normed,
    read_raw,
    survival_markdown,
    train_classifier,
    write_normed,
    write_raw,
)
from hf_lottery.patterns.classifier import center_crop_or_pad
from hf_lottery.patterns.labelling import label_maps
from hf_lottery.patterns.paper_format import paper_label, read_labels_txt

from .conftest import tiny_batch, tiny_bert


def test_synthetic_maps_are_row_stochastic_and_deterministic():
    maps, labels = generate_synthetic_maps(6, seed=3, min_length=8, max_length=20)
    assert len(maps) == 30 and sorted(set(labels)) == [0, 1, 2, 3, 4]
    for m in maps:
        assert m.shape[0] == m.shape[1] and 8 <= m.shape[0] <= 20
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-5)
        assert (m >= 0).all()
    again, _ = generate_synthetic_maps(6, seed=3, min_length=8, max_length=20)
    assert all(np.array_equal(a, b) for a, b in zip(maps, again))
    diagonal = maps[labels.index(1)]
    assert (
        diagonal.argmax(1) == np.clip(np.arange(len(diagonal)) + (diagonal.argmax(1)[2] - 2), 0, len(diagonal) - 1)
    ).mean() > 0.8


def test_labels_normalise_and_paper_merges():
    assert normalize_label("Vertical_CLS") == "vertical"
    assert paper_label("single_vertical") == "vertical" and paper_label("vertical_and_diagonal") == "vertical+diagonal"
    with pytest.raises(ValueError, match="expected one of"):
        normalize_label("spiral")


def test_crop_and_pad_are_centred():
    big = torch.arange(100.0).view(10, 10)
    cropped = center_crop_or_pad(big, 4, normalize=False)
    assert torch.equal(cropped, big[3:7, 3:7])
    padded = center_crop_or_pad(torch.ones(2, 2), 6, normalize=False)
    assert padded.sum() == 4 and padded[2:4, 2:4].sum() == 4
    with pytest.raises(ValueError, match="square"):
        center_crop_or_pad(torch.ones(2, 3))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    maps, labels = generate_synthetic_maps(60, seed=0, min_length=8, max_length=32)
    return train_classifier(maps, labels, input_size=32, epochs=12, progress=False)


def test_classifier_learns_the_synthetic_patterns(trained):
    classifier, summary = trained
    # held-out: fresh maps from another seed, never seen in training or model selection
    maps, labels = generate_synthetic_maps(30, seed=99, min_length=8, max_length=32)
    scores = evaluate_classifier(classifier, maps, labels)
    print(f"held-out synthetic weighted F1: {scores['weighted_f1']:.3f}")
    assert scores["weighted_f1"] > 0.75
    assert np.array(scores["confusion_matrix"]).sum() == len(maps)
    assert set(scores["per_class_f1"]) == set(PATTERNS)
    assert len(summary["history"]) == 12 and summary["validation_size"] == 60


def test_checkpoint_round_trip_is_bit_exact(trained, tmp_path):
    classifier, _ = trained
    classifier.save_pretrained(tmp_path)
    loaded = PatternClassifier.from_pretrained(tmp_path)
    for (name, a), b in zip(classifier.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert (loaded.input_size, loaded.labels) == (32, PATTERNS)
    maps, _ = generate_synthetic_maps(2, seed=5)
    assert np.array_equal(loaded.predict_proba(maps), classifier.predict_proba(maps))
    with pytest.raises(FileNotFoundError, match="no pattern classifier"):
        PatternClassifier.from_pretrained(tmp_path / "missing")


def test_shipped_classifier_loads():
    classifier = PatternClassifier.from_pretrained()
    assert classifier.labels == PATTERNS and classifier.summary["validation"]["weighted_f1"] > 0.9


def test_paper_formats_round_trip(tmp_path):
    maps, labels = generate_synthetic_maps(3, seed=1, max_length=12)
    names = [str(i) for i in range(len(maps))]  # bare numbers are zero-padded like the paper's loader
    write_raw(tmp_path, maps, labels, names)
    read_maps, read_labels, read_names = read_raw(tmp_path)
    assert read_names == sorted(n.zfill(4) for n in names)
    order = [int(n) for n in read_names]
    assert read_labels == [labels[i] for i in order]
    assert all(np.array_equal(read_maps[k], maps[i]) for k, i in enumerate(order))
    write_normed(tmp_path, maps, labels)
    n_maps, n_labels, _ = read_normed(tmp_path)
    assert n_labels == labels and all(np.array_equal(a, b) for a, b in zip(n_maps, maps))
    (tmp_path / "raw" / "labels.txt").write_text("double_vertical = 0000, 0001\nvertical_and_diagonal = 0002\n")
    assert read_labels_txt(tmp_path / "raw" / "labels.txt") == {
        "0000": "vertical",
        "0001": "vertical",
        "0002": "vertical+diagonal",
    }


def test_extraction_crops_to_real_tokens_and_norm_based_maps():
    model = tiny_bert(attn_implementation="sdpa")
    batch = tiny_batch()  # row 0 has 3 padding tokens
    maps = extract_attention_maps(model, [batch], progress=False)
    assert len(maps) == 4 and maps[0].shape == (3, 4, 6, 6) and maps[1].shape == (3, 4, 9, 9)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 4, 9))
    assert model.config._attn_implementation == "sdpa"  # restored
    normed = extract_attention_maps(model, [batch], norm_based=True, progress=False)
    # direct computation for layer 1, head 2 of example 1: alpha_ij * || v_j^h W_O^h ||
    layer, head, size = 1, 2, 8
    captured = {}
    hook = model.bert.encoder.layer[layer].attention.self.value.register_forward_hook(
        lambda m, a, o: captured.update(v=o)
    )
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    hook.remove()
    v = captured["v"][1, :, head * size : (head + 1) * size]
    w = model.bert.encoder.layer[layer].attention.output.dense.weight[:, head * size : (head + 1) * size]
    norms = (v @ w.T).norm(dim=-1)
    torch.testing.assert_close(normed[1][layer, head], maps[1][layer, head] * norms[None, :], rtol=1e-4, atol=1e-6)


def test_predictions_over_a_tiny_bert_give_one_label_per_head(trained):
    classifier, _ = trained
    model = tiny_bert()
    patterns = predict_head_patterns(model, [tiny_batch()], classifier, num_examples=3, progress=False)
    assert len(patterns.labels) == 3 and all(len(row) == 4 for row in patterns.labels)
    assert all(label in PATTERNS for row in patterns.labels for label in row)
    assert patterns.num_examples == 3
    np.testing.assert_allclose(patterns.shares.sum(-1), 1.0)


def test_survival_table_by_hand(tmp_path):
    labels = [["vertical", "diagonal"], ["vertical", "block"]]
    survivors = torch.tensor([[True, False], [True, True]])
    table = pattern_survival_table({"sst2": labels}, {"sst2": survivors})
    assert table["sst2"]["all"]["vertical"] == 0.5 and table["sst2"]["surviving"]["vertical"] == 2 / 3
    assert table["sst2"]["surviving"]["diagonal"] == 0.0 and table["sst2"]["num_surviving"] == 3
    assert "| sst2 | surviving (3) |" in survival_markdown(table)
    from hf_lottery.patterns import plot_pattern_survival

    assert plot_pattern_survival(table, tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="does not match"):
        pattern_survival_table({"x": labels}, {"x": torch.ones(3, 3)})


def test_labelling_tool_with_scripted_answers_is_resumable(tmp_path):
    maps, _ = generate_synthetic_maps(1, seed=2, max_length=10)
    names = ["a_1", "a_2", "a_3", "a_4", "a_5"]
    answers = iter(["2", "nonsense", "3", "s", "q"])
    messages = []
    given = label_maps(maps, names, tmp_path, ask=lambda prompt: next(answers), echo=messages.append)
    assert given == {"a_1": "diagonal", "a_2": "vertical"}
    assert messages and "Please answer" in messages[0]
    assert (tmp_path / "png" / "a_1.png").is_file()
    assert read_labels_txt(tmp_path / "raw" / "labels.txt") == {"a_1": "diagonal", "a_2": "vertical"}
    # resuming skips what is labelled and asks only for the rest
    asked = []
    label_maps(maps, names, tmp_path, ask=lambda prompt: asked.append(prompt) or "1")
    assert len(asked) == 3 and read_labels_txt(tmp_path / "raw" / "labels.txt")["a_5"] == "block"
    read_maps, read_labels, read_names = read_raw(tmp_path)
    assert read_names == ["a_1", "a_2", "a_3", "a_4", "a_5"] and read_labels[0] == PATTERNS.index("diagonal")
