"""Bad tickets: fields refused at construction, damaged or tampered ticket files refused at load (naming the file and
field), config entries that no longer match the weights, legacy masks, Hub look-ups that cannot succeed offline."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import constants
from safetensors.torch import load_file, save_file

from hf_lottery.downloads import HubFileNotFoundError
from hf_lottery.files import TICKET_CONFIG_NAME, TICKET_MASKS_NAME
from hf_lottery.gates import apply_ticket
from hf_lottery.structure import EncoderStructure
from hf_lottery.tickets.legacy import load_legacy_ticket
from hf_lottery.tickets.ticket import LotteryTicket

from . import BadInput


DIMS = {"num_layers": 2, "num_heads": 2, "head_size": 4, "hidden_size": 8, "intermediate_size": 6}


def _ticket(**changes):
    values = {"head_mask": torch.tensor([[1, 0], [1, 1]]), "mlp_mask": torch.tensor([1, 0]), "model_dims": DIMS}
    values.update(changes)
    return LotteryTicket(**values)


def _new(**changes):
    return lambda tmp_path: _ticket(**changes)


def _saved(tmp_path, ticket=None) -> Path:
    return (ticket or _ticket(head_importance=torch.rand(2, 2))).save_pretrained(tmp_path / "ticket")


def _edit_config(**changes):
    """Save a ticket, change its config (None removes a key), load it."""

    def call(tmp_path):
        folder = _saved(tmp_path)
        config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
        for key, value in changes.items():
            config.pop(key) if value is None else config.__setitem__(key, value)
        (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
        return LotteryTicket.from_pretrained(folder)

    return call


def _edit_masks(change, drop_checksum=True):
    """Save a ticket, change its masks file (`change` edits the tensor dict), load it."""

    def call(tmp_path):
        folder = _saved(tmp_path)
        tensors = load_file(str(folder / TICKET_MASKS_NAME))
        change(tensors)
        save_file(tensors, str(folder / TICKET_MASKS_NAME))
        if drop_checksum:
            config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
            del config["masks_sha256"]
            (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
        return LotteryTicket.from_pretrained(folder)

    return call


def _truncate_masks(tmp_path):
    folder = _saved(tmp_path)
    data = (folder / TICKET_MASKS_NAME).read_bytes()
    (folder / TICKET_MASKS_NAME).write_bytes(data[:40])
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    del config["masks_sha256"]
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    return LotteryTicket.from_pretrained(folder)


def _not_json(tmp_path):
    folder = _saved(tmp_path)
    (folder / TICKET_CONFIG_NAME).write_text('{"format_version": 1,')
    return LotteryTicket.from_pretrained(folder)


def _folder_is_a_file(tmp_path):
    (tmp_path / "ticket").write_text("not a folder")
    return LotteryTicket.from_pretrained(tmp_path / "ticket")


def _save_into_a_file(tmp_path):
    (tmp_path / "ticket").write_text("not a folder")
    return _ticket().save_pretrained(tmp_path / "ticket")


@contextlib.contextmanager
def _offline():
    online, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = online


def _hub_offline(tmp_path):
    with _offline():
        return LotteryTicket.from_pretrained("user/some-ticket", cache_dir=tmp_path / "cache")


def _hub_invalid_id(tmp_path):
    with _offline():  # refused before any network call, online or not
        return LotteryTicket.from_pretrained("user/name/with/too/many/parts")


def _tiny_model(**overrides):
    from tests.conftest import tiny_bert

    return tiny_bert(**overrides)


def _magnitude_entry_then(change_weights: bool, pass_model: bool = True):
    def call(tmp_path):
        model = _tiny_model()
        structure = EncoderStructure(model)
        generator = torch.Generator().manual_seed(0)
        masks = {
            name: torch.rand(p.shape, generator=generator) > 0.5
            for name, p in structure.magnitude_parameters().items()
        }
        ticket = LotteryTicket.full(model, method="magnitude").copy(weight_masks=masks)
        ticket.bake(model)
        entry = json.loads(json.dumps(ticket.to_config_entry(model)))
        if change_weights:
            with torch.no_grad():
                structure.layers[0].query.weight.add_(0.25)  # e.g. trained on without the ticket
        return LotteryTicket.from_config_entry(entry, model if pass_model else None)

    return call


def _entry(**changes):
    def call(tmp_path):
        entry = _ticket().to_config_entry()
        entry.update(changes)
        return LotteryTicket.from_config_entry(entry)

    return call


def _legacy(head_mask, **save_kwargs):
    def call(tmp_path):
        np.save(tmp_path / "head_mask.npy", head_mask, **save_kwargs)
        return load_legacy_ticket(tmp_path)

    return call


def _legal_path_base_model(tmp_path):
    ticket = _ticket().copy(base_model=tmp_path / "pretrained", base_model_revision=Path("v1"))
    loaded = LotteryTicket.from_pretrained(ticket.save_pretrained(tmp_path / "ticket"))
    assert loaded.base_model == str(tmp_path / "pretrained") and loaded.base_model_revision == "v1"
    assert loaded == ticket


def _legal_old_importance_source(tmp_path):
    loaded = _edit_config(search_data=None, importance_source="held-out")(tmp_path)
    assert loaded.search_data == "held-out"


def _legal_numpy_metrics(tmp_path):
    ticket = _ticket(metrics={"accuracy": np.float32(0.75), "steps": np.int64(3)}, seed=np.int64(42))
    assert ticket.metrics == {"accuracy": 0.75, "steps": 3} and type(ticket.metrics["accuracy"]) is float
    assert ticket.seed == 42 and LotteryTicket.from_pretrained(ticket.save_pretrained(tmp_path)) == ticket


def _legacy_folder(root: Path, dtype: str = "<f4") -> Path:
    folder = root / "CoLA" / "seed_1"
    folder.mkdir(parents=True)
    np.save(folder / "head_mask.npy", np.array([[1, 0], [1, 1]], dtype=dtype))
    np.save(folder / "mlp_mask.npy", np.array([1, 0], dtype=dtype))
    np.save(folder / "head_importance.npy", np.array([[0.25, 0.125], [3.5, -2.0]], dtype=dtype.replace("4", "8")))
    return folder


def _legal_big_endian_legacy(tmp_path):
    big, little = (load_legacy_ticket(_legacy_folder(tmp_path / order, order)) for order in (">f4", "<f4"))
    assert big == little and big.head_mask.tolist() == [[True, False], [True, True]]
    assert big.head_importance.tolist() == [[0.25, 0.125], [3.5, -2.0]]


def _import_legacy(folders, output_dir):
    from hf_lottery.commands.tickets import main

    return main("import-legacy", [*map(str, folders), "--output_dir", str(output_dir)])


def _legacy_same_name(tmp_path):
    try:
        _import_legacy([_legacy_folder(tmp_path / run) for run in ("run1", "run2")], tmp_path / "out")
    finally:
        assert not (tmp_path / "out").exists()  # refused before anything is written


def _legacy_over_another_ticket(tmp_path):
    _import_legacy([_legacy_folder(tmp_path / "run1")], tmp_path / "out")
    _import_legacy([_legacy_folder(tmp_path / "run1-big-endian", ">f4")], tmp_path / "out")  # the same ticket
    other = _legacy_folder(tmp_path / "run2")
    np.save(other / "mlp_mask.npy", np.array([1.0, 1.0]))
    _import_legacy([other], tmp_path / "out")


def _legacy_cli_same_name(tmp_path):
    from hf_lottery.cli import main

    folders = [str(_legacy_folder(tmp_path / run)) for run in ("a", "b")]
    assert main(["import-legacy", *folders, "--output_dir", str(tmp_path / "out")]) != 0
    assert not (tmp_path / "out").exists()


def _deep_config(depth: int):
    """Save a ticket, make its config's `extra` a list nested `depth` levels deep, load it."""

    def call(tmp_path):
        folder = _saved(tmp_path)
        config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
        config.pop("extra")
        text = json.dumps(config)[:-1] + ', "extra": {"x": ' + "[" * depth + "]" * depth + "}}"
        (folder / TICKET_CONFIG_NAME).write_text(text)
        return LotteryTicket.from_pretrained(folder)

    return call


def _deep_extra(tmp_path):
    extra: dict = {}
    for _ in range(2000):
        extra = {"x": extra}
    return _ticket(extra=extra)


def _masks_as(dtype, values=None):
    """Save a ticket, store every mask (and score) as `dtype` with `values` for the head mask, load it."""

    def change(tensors):
        for name in tensors:
            tensors[name] = tensors[name].to(dtype)
        if values is not None:
            tensors["head_mask"] = torch.tensor(values, dtype=dtype)

    def call(tmp_path):
        loaded = _edit_masks(change)(tmp_path)
        assert loaded.masks_equal(_ticket()) and loaded.head_mask.dtype == torch.bool

    return call


def _legal_concurrent_saves(tmp_path):
    import threading

    folder = tmp_path / "ticket"
    tickets = [_ticket(seed=seed, head_mask=torch.rand(2, 2) > 0.5, mlp_mask=torch.rand(2) > 0.5) for seed in range(4)]
    tickets[0].save_pretrained(folder)
    loads, errors = [], []

    def run(job):
        try:
            for _ in range(15):
                job()
        except BaseException as err:  # noqa: BLE001 - collected, re-raised below
            errors.append(err)

    jobs = [lambda t=t: t.save_pretrained(folder) for t in tickets]
    jobs += [lambda: loads.append(LotteryTicket.from_pretrained(folder))] * 4
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert len(loads) == 60 and all(any(t == loaded for t in tickets) for loaded in loads)  # whole tickets only
    assert sorted(p.name for p in folder.iterdir()) == [TICKET_CONFIG_NAME, TICKET_MASKS_NAME]


def _shared_layers_model():
    model = _tiny_model()
    model.bert.encoder.layer[1] = model.bert.encoder.layer[0]
    return model


CASES = [
    # ---- fields, refused at construction
    BadInput("ticket-model-dims-list", "tickets", _new(model_dims=[2, 2, 4, 8, 6]), ValueError, r"`model_dims` must be a dict with the keys"),
    BadInput("ticket-model-dims-missing-key", "tickets", _new(model_dims={"num_layers": 2, "num_heads": 2}), ValueError, r"`model_dims` must have exactly the keys .*missing \['head_size'"),
    BadInput("ticket-model-dims-negative-hidden", "tickets", _new(model_dims={**DIMS, "hidden_size": -8}), ValueError, r"`model_dims\['hidden_size'\]` must be a positive integer; got -8"),
    BadInput("ticket-model-dims-zero-intermediate", "tickets", _new(model_dims={**DIMS, "intermediate_size": 0}), ValueError, r"`model_dims\['intermediate_size'\]` must be a positive integer; got 0"),
    BadInput("ticket-model-dims-disagree-with-mask", "tickets", _new(model_dims={**DIMS, "num_heads": 3}), ValueError, r"`model_dims` .* disagree with `head_mask` of shape \(2, 2\)"),
    BadInput("ticket-seed-string", "tickets", _new(seed="42"), TypeError, r"`seed` must be an integer or None; got str"),
    BadInput("ticket-seed-bool", "tickets", _new(seed=True), TypeError, r"`seed` must be an integer"),
    BadInput("ticket-history-dict", "tickets", _new(history={"step": 0}), TypeError, r"`history` must be a list of dicts"),
    BadInput("ticket-metrics-list", "tickets", _new(metrics=[0.5]), TypeError, r"`metrics` must be a dict with string keys"),
    BadInput("ticket-extra-non-json-value", "tickets", _new(extra={"model": torch.nn.Linear(2, 2)}), TypeError, r"`extra\['model'\]` must hold JSON values .* got Linear"),
    BadInput("ticket-threshold-above-one", "tickets", _new(threshold=1.5), ValueError, r"`threshold` must be in \(0, 1\]"),
    BadInput("ticket-base-model-int", "tickets", _new(base_model=7), TypeError, r"`base_model` must be a Hub id, a local path or None"),
    BadInput("ticket-head-mask-ragged", "tickets", _new(head_mask=[[1, 0], [1]]), ValueError, r"`head_mask` must be a tensor or \(nested\) list of 0/1 values of one shape"),
    BadInput("ticket-head-mask-halves", "tickets", _new(head_mask=torch.full((2, 2), 0.5)), ValueError, r"`head_mask` must contain only 0 and 1 .*\[0\.5\]"),
    BadInput("ticket-mlp-mask-one-per-layer", "tickets", _new(mlp_mask=torch.ones(3)), ValueError, r"`mlp_mask` must have one entry per layer \(2"),
    BadInput("ticket-head-importance-all-nan", "tickets", _new(head_importance=torch.full((2, 2), float("nan"))), ValueError, r"`head_importance` must hold finite scores; it holds 4 NaN"),
    BadInput("ticket-head-importance-shape", "tickets", _new(head_importance=torch.ones(3, 2)), ValueError, r"`head_importance` must have shape \(2, 2\)"),
    BadInput("ticket-kind-typo", "tickets", _new(kind="lucky"), ValueError, r"`kind` must be one of \('good'"),
    BadInput("ticket-weight-mask-outside-encoder", "tickets", _new(weight_masks={"bert.pooler.dense.weight": torch.ones(2)}), ValueError, r"'bert.pooler.dense.weight' is not an encoder parameter name"),
    # ---- files, refused at load
    BadInput("ticket-file-format-version-zero", "tickets", _edit_config(format_version=0), ValueError, r"ticket_config.json has `format_version` 0; .*integer format version from 1"),
    BadInput("ticket-file-format-version-negative", "tickets", _edit_config(format_version=-3), ValueError, r"`format_version` -3"),
    BadInput("ticket-file-format-version-true", "tickets", _edit_config(format_version=True), ValueError, r"`format_version` True"),
    BadInput("ticket-file-format-version-string", "tickets", _edit_config(format_version="1"), ValueError, r"`format_version` '1'"),
    BadInput("ticket-file-format-version-future", "tickets", _edit_config(format_version=9), ValueError, r"format version 9; .*Upgrade hf-lottery"),
    BadInput("ticket-file-negative-count", "tickets", _edit_config(kept_mlps=-1), ValueError, r"`kept_mlps` -1; expected a non-negative integer"),
    BadInput("ticket-file-masks-replaced-checksum-removed", "tickets", _edit_masks(lambda t: t.update(head_mask=torch.ones(2, 2, dtype=torch.bool))), ValueError, r"records `kept_heads` = 3 but the masks file holds 4"),
    BadInput("ticket-file-importance-all-nan", "tickets", _edit_masks(lambda t: t.update(head_importance=torch.full((2, 2), float("nan")))), ValueError, r"ticket_config.json: `head_importance` must hold finite scores"),
    BadInput("ticket-file-torn-save", "tickets", _edit_masks(lambda t: t.update(mlp_mask=torch.ones(2, dtype=torch.bool)), drop_checksum=False), ValueError, r"ticket_masks.safetensors does not match the checksum recorded in ticket_config.json: .*The way out: save the ticket again"),
    BadInput("ticket-file-truncated-masks", "tickets", _truncate_masks, ValueError, r"ticket_masks.safetensors is corrupted or truncated"),
    BadInput("ticket-file-config-not-json", "tickets", _not_json, ValueError, r"ticket_config.json is not valid JSON"),
    BadInput("ticket-file-bad-checksum-field", "tickets", _edit_config(masks_sha256=123), ValueError, r"`masks_sha256` 123; expected a sha256 hex digest"),
    BadInput("ticket-folder-is-a-file", "tickets", _folder_is_a_file, NotADirectoryError, r"is a file; a ticket is a folder holding ticket_config.json"),
    BadInput("ticket-save-into-a-file", "tickets", _save_into_a_file, NotADirectoryError, r"Cannot save a ticket into .*: it is a file"),
    # ---- the Hub
    BadInput("ticket-hub-offline", "hub", _hub_offline, ConnectionError, r"Could not download .* of 'user/some-ticket': offline mode is on \(HF_HUB_OFFLINE=1\)"),
    BadInput("ticket-hub-invalid-repo-id", "hub", _hub_invalid_id, HubFileNotFoundError, r"'user/name/with/too/many/parts' is neither a local folder nor a valid Hub repo id"),
    # ---- a model config's ticket entry
    BadInput("ticket-entry-weights-changed", "tickets", _magnitude_entry_then(change_weights=True), ValueError, r"The model's weights no longer match the recorded ticket: layer.0.attention.self.query.weight"),
    BadInput("ticket-entry-magnitude-without-model", "tickets", _magnitude_entry_then(change_weights=False, pass_model=False), ValueError, r"records weight masks \(\d+ parameters\) by the model's exact zeros; pass the model"),
    BadInput("ticket-entry-format-version-string", "tickets", _entry(format_version="1"), ValueError, r"`hf_lottery_ticket` entry has `format_version` '1'"),
    BadInput("ticket-entry-dims-list", "tickets", _entry(model_dims=[2, 2]), ValueError, r"`hf_lottery_ticket` entry: `model_dims` must be a dict"),
    # ---- the paper's .npy masks
    BadInput("legacy-mask-values", "tickets", _legacy(np.full((2, 2), 3.0)), ValueError, r"head_mask.npy` must contain only 0 and 1"),
    BadInput("legacy-pickled-npy", "tickets", _legacy(np.array([{"a": 1}], dtype=object), allow_pickle=True), ValueError, r"head_mask.npy is not a readable .npy array: .*allow_pickle=False"),
    BadInput("legacy-big-endian-masks-load-exactly", "tickets", _legal_big_endian_legacy, None),
    BadInput("legacy-two-folders-one-name", "tickets", _legacy_same_name, ValueError, r"run1/CoLA/seed_1 and .*run2/CoLA/seed_1 would both be .*out/CoLA_seed_1; import them one at a time"),
    BadInput("legacy-over-another-ticket", "tickets", _legacy_over_another_ticket, ValueError, r"out/CoLA_seed_1 already holds another ticket; choose another --output_dir or delete it"),
    BadInput("legacy-cli-two-folders-one-name", "tickets", _legacy_cli_same_name, None),
    # ---- deeply nested or non-standard-dtype ticket files
    BadInput("ticket-file-config-nested-10000-deep", "tickets", _deep_config(10_000), ValueError, r"ticket_config.json is not valid JSON \(maximum recursion depth exceeded"),
    BadInput("ticket-file-extra-nested-500-deep", "tickets", _deep_config(500), ValueError, r"ticket_config.json: `extra` is nested over 100 levels deep"),
    BadInput("ticket-extra-nested-2000-deep", "tickets", _deep_extra, ValueError, r"`extra` is nested over 100 levels deep"),
    BadInput("ticket-file-masks-float64", "tickets", _masks_as(torch.float64), None),
    BadInput("ticket-file-masks-int8", "tickets", _masks_as(torch.int8), None),
    BadInput("ticket-file-masks-bool", "tickets", _masks_as(torch.bool), None),
    BadInput("ticket-file-masks-bfloat16", "tickets", _masks_as(torch.bfloat16), None),
    BadInput("ticket-file-masks-float8", "tickets", _masks_as(torch.float8_e4m3fn), None),
    BadInput("ticket-file-masks-uint64", "tickets", _masks_as(torch.uint64), None),
    BadInput("ticket-file-masks-float16-halves", "tickets", _masks_as(torch.float16, [[1, 0], [1, 0.5]]), ValueError, r"`head_mask` must contain only 0 and 1 \(or be bool\); found torch.float16 values such as \[0\.5\]"),
    BadInput("ticket-file-masks-complex", "tickets", _masks_as(torch.complex64), ValueError, r"`head_mask` has dtype torch.complex64; a mask is bool, or integers or real floats of 0 and 1"),
    # ---- concurrent saves and loads of one folder
    BadInput("ticket-concurrent-saves-and-loads", "tickets", _legal_concurrent_saves, None),
    # ---- models a ticket cannot mean what the user thinks on
    BadInput("ticket-multi-label-model", "tickets", lambda tmp_path: LotteryTicket.full(_tiny_model(problem_type="multi_label_classification")), ValueError, r"problem_type='multi_label_classification'"),
    BadInput("ticket-apply-to-layers-sharing-a-module", "tickets", lambda tmp_path: apply_ticket(_shared_layers_model(), LotteryTicket.full(_tiny_model())), ValueError, r"`layer\.0\..*` and `layer\.1\..*` are one parameter \(layers share a module"),
    # ---- legal inputs: exact behaviour
    BadInput("ticket-path-base-model-is-legal", "tickets", _legal_path_base_model, None),
    BadInput("ticket-old-importance-source-loads", "tickets", _legal_old_importance_source, None),
    BadInput("ticket-numpy-scalars-become-json", "tickets", _legal_numpy_metrics, None),
]  # fmt: skip
