import pytest
from transformers import AutoTokenizer

from hf_lottery.tasks.demo import load_demo_task
from hf_lottery.tasks.glue import (
    GLUE_TASKS,
    canonical_task_name,
    held_out_split,
    load_glue,
    load_text_classification,
    tokenize_for_classification,
)

from .conftest import GLUE_DIR, minilm_path, require_shared


@pytest.mark.parametrize(
    ("task", "folder", "train_rows", "dev_rows"),
    [
        ("cola", "CoLA", 8551, 1043),
        ("sst2", "SST-2", 67349, 872),
        ("mrpc", "MRPC", 3668, 408),
        ("rte", "RTE", 2490, 277),
    ],
)
def test_real_glue_files_row_counts(task, folder, train_rows, dev_rows):
    data = load_glue(task, require_shared(GLUE_DIR / folder))
    assert (data["train"].num_rows, data["validation"].num_rows) == (train_rows, dev_rows)
    spec = GLUE_TASKS[task]
    assert data["train"].column_names == [*spec.text_columns, "label"]
    assert set(data["train"]["label"]) == set(range(spec.num_labels))


def test_glue_root_folder_and_quirks():
    root = require_shared(GLUE_DIR)
    cola = load_glue("CoLA", root)  # the GLUE root works as well as the task folder
    first = cola["train"][0]
    assert first["sentence"].startswith("Our friends won't buy this analysis")
    assert first["label"] == 1
    mrpc = load_glue("mrpc", root / "MRPC")  # BOM-prefixed header
    assert mrpc["train"].features["label"].names == ["not_equivalent", "equivalent"]
    quoted = [s for s in list(mrpc["train"]["sentence1"]) + list(mrpc["train"]["sentence2"]) if s.startswith('"')]
    assert len(quoted) > 100  # a leading quote is text: with CSV quoting these rows would merge and the count drop
    rte = load_glue("rte", root)
    assert rte["validation"].features["label"].names == ["entailment", "not_entailment"]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_other_tasks_from_small_tsvs(tmp_path):
    write(
        tmp_path / "STS-B" / "train.tsv",
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tmain\tx\t2012\t1\tnone\tnone\tA man plays.\tA man is playing.\t4.5\n",
    )
    write(
        tmp_path / "STS-B" / "dev.tsv",
        'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tmain\tx\t2012\t1\tnone\tnone\tNA\t"Quoted" text.\t0.25\n',
    )
    stsb = load_glue("sts-b", tmp_path)
    assert stsb["train"][0]["label"] == pytest.approx(4.5)
    assert stsb["validation"][0]["sentence1"] == "NA"  # not a missing value
    assert stsb["validation"][0]["sentence2"] == '"Quoted" text.'
    header = "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label\n"
    row = "0\t1\t2\tfiction\tx\tx\tx\tx\tA premise.\tA hypothesis.\tneutral\tcontradiction\n"
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        write(tmp_path / "MNLI" / name, header + row)
    mnli = load_glue("MNLI", tmp_path)
    assert set(mnli) == {"train", "validation", "validation_matched", "validation_mismatched"}
    assert mnli["validation"][0] == {"premise": "A premise.", "hypothesis": "A hypothesis.", "label": 2}
    write(
        tmp_path / "QQP" / "train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\tWhy?\tHow?\t1\n"
    )
    write(tmp_path / "QQP" / "dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\tWhy?\tHow?\t0\n")
    assert load_glue("qqp", tmp_path)["train"][0]["label"] == 1
    write(tmp_path / "QNLI" / "train.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tHim.\tnot_entailment\n")
    write(tmp_path / "QNLI" / "dev.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tHim.\tentailment\n")
    assert load_glue("qnli", tmp_path)["train"][0]["label"] == 1
    write(tmp_path / "WNLI" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\t1\n")
    write(tmp_path / "WNLI" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\t0\n")
    assert load_glue("wnli", tmp_path)["train"].features["label"].names[1] == "entailment"


def test_errors_name_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        canonical_task_name("squad")
    with pytest.raises(FileNotFoundError, match="No train.tsv for RTE"):
        load_glue("rte", tmp_path)
    write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tlabel\n0\tA.\tentailment\n")
    write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sentence2'\]"):
        load_glue("rte", tmp_path)
    write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n")
    with pytest.raises(ValueError, match="split is empty"):
        load_glue("rte", tmp_path)
    write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tmaybe\n")
    with pytest.raises(ValueError, match="label 'maybe' is not one of"):
        load_glue("rte", tmp_path)


def test_hub_path_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="Pass data_dir="):
        load_glue("rte")


def test_users_own_data(tmp_path):
    write(tmp_path / "train.csv", "review,stars\ngreat,good\nawful,bad\nfine,good\n")
    write(tmp_path / "dev.jsonl", '{"review": "meh", "stars": "bad"}\n')
    data = load_text_classification(
        {"train": tmp_path / "train.csv", "validation": tmp_path / "dev.jsonl"}, text_columns=["review"],
        label_column="stars",
    )  # fmt: skip
    assert data["train"].features["label"].names == ["bad", "good"]
    assert data["train"]["label"] == [1, 0, 1] and data["validation"]["label"] == [0]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]"):
        load_text_classification(data["train"], text_columns=["text"])
    with pytest.raises(ValueError, match="not in label_names"):
        load_text_classification({"train": tmp_path / "train.csv"}, text_columns=["review"], label_column="stars",
                                 label_names=["good"])  # fmt: skip
    with pytest.raises(TypeError, match="must be a datasets.Dataset"):
        load_text_classification(42, text_columns=["x"])


def test_tokenisation_truncates_pairs_and_keeps_labels():
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    data = load_text_classification(
        __import__("datasets").Dataset.from_dict({"a": ["word " * 300, "short"], "b": ["x", "y"], "label": [0, 1]}),
        text_columns=["a", "b"],
    )
    tokenized = tokenize_for_classification(data, tokenizer, ["a", "b"], max_length=128)["train"]
    assert tokenized.column_names == ["label", "input_ids", "token_type_ids", "attention_mask"]
    assert len(tokenized[0]["input_ids"]) == 128 and len(tokenized[1]["input_ids"]) < 10
    assert 1 in tokenized[1]["token_type_ids"]  # the second segment of a pair
    with pytest.raises(ValueError, match="one or two text columns"):
        tokenize_for_classification(data, tokenizer, ["a", "b", "label"])


def test_held_out_split_is_deterministic_and_stratified():
    train = load_demo_task(num_train=200, num_validation=10)["train"]
    rest, held = held_out_split(train, 0.2, seed=3)
    assert (len(rest), len(held)) == (160, 40)
    assert sum(held["label"]) == 20
    again = held_out_split(train, 40, seed=3)[1]
    assert again["sentence"] == held["sentence"]
    assert not set(rest["sentence"]) & set(held["sentence"])
    with pytest.raises(ValueError, match="non-empty"):
        held_out_split(train, 200)


def test_demo_task_is_deterministic_balanced_and_disjoint():
    a, b = load_demo_task(seed=0), load_demo_task(seed=0)
    assert a["train"]["sentence"] == b["train"]["sentence"]
    assert load_demo_task(seed=1)["train"]["sentence"] != a["train"]["sentence"]
    for split in ("train", "validation"):
        labels = a[split]["label"]
        assert sum(labels) * 2 == len(labels)
    assert not set(a["train"]["sentence"]) & set(a["validation"]["sentence"])
    assert load_glue("demo")["validation"].num_rows == 400
    contrast = [s for s, y in zip(a["train"]["sentence"], a["train"]["label"]) if ", but " in s]
    assert len(contrast) > 200


def test_mnli_mm_is_scored_on_the_mismatched_dev_set(tmp_path):
    from hf_lottery.pipeline.config import RunSettings
    from hf_lottery.pipeline.context import RunContext
    from hf_lottery.tasks.glue import load_glue

    header = "index\tsentence1\tsentence2\tgold_label\n"
    (tmp_path / "train.tsv").write_text(header + "0\ta\tb\tneutral\n1\tc\td\tentailment\n")
    (tmp_path / "dev_matched.tsv").write_text(header + "0\tmatched\tx\tneutral\n")
    (tmp_path / "dev_mismatched.tsv").write_text(header + "0\tmismatched\ty\tcontradiction\n1\tm2\tz\tneutral\n")
    assert len(load_glue("mnli", tmp_path)["validation"]) == 1  # plain mnli: matched
    for name, split, first in (("mnli", "validation", "matched"), ("mnli-mm", "validation_mismatched", "mismatched")):
        ctx = RunContext(RunSettings.from_kwargs(task_name=name, data_dir=str(tmp_path), output_dir=str(tmp_path)))
        assert ctx.dev_split == split and ctx._selected["dev"]["premise"][0] == first
        assert ctx.data_description["dev_split"] == split
