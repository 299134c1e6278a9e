import json

import pytest
import torch
from transformers import Trainer, TrainerCallback

from hf_lottery import EncoderStructure, LotteryTicket, apply_ticket
from trainer_callbacks import MagnitudePruningCallback, StructuredPruningCallback, TicketCallback

from .conftest import tiny_bert
from .science_helpers import accuracy
from .test_gates import magnitude_ticket, structured_entries, structured_ticket
from .trainer_helpers import collate, to_dataset, training_args


@pytest.fixture
def tiny_pretrained_classifier(tmp_path):
    """A tiny classifier loaded from a folder, as a user's fine-tune starts from a pre-trained model."""
    from transformers import AutoModelForSequenceClassification

    tiny_bert().save_pretrained(tmp_path / "pretrained")
    return AutoModelForSequenceClassification.from_pretrained(tmp_path / "pretrained", attn_implementation="eager")


def mixed_ticket(model):
    return structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")


def pruned_entries(model, ticket):
    params = EncoderStructure(model).named_encoder_parameters()
    return {name: params[name].detach()[~mask] for name, mask in ticket.weight_masks.items()}


def test_ticket_callback_keeps_pruned_weights_exactly_zero(tmp_path):
    model = tiny_bert()
    ticket = mixed_ticket(model)
    callback = TicketCallback(ticket)
    trainer = Trainer(
        model=model, args=training_args(tmp_path), train_dataset=to_dataset(64, 1), data_collator=collate,
        callbacks=[callback],
    )  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    assert all((values == 0).all() for values in pruned_entries(model, ticket).values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it did train
    # gated logits match the ticket: same as a fresh application of the ticket on the trained weights
    batch = collate(to_dataset(8, 2).to_list())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.eval()
    with torch.no_grad():
        gated = model(**inputs).logits
        callback.handle.remove(restore_weights=False)
        baked = ticket.bake(model)(**inputs).logits
    torch.testing.assert_close(gated, baked, atol=1e-6, rtol=0)
    # every checkpoint and the output dir hold the ticket
    for folder in (tmp_path / "checkpoint-4", tmp_path / "checkpoint-8", tmp_path):
        assert LotteryTicket.from_pretrained(folder / "hf_lottery_ticket").masks_equal(ticket)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    def run(output_dir, max_steps, resume=False, ticket_arg="given"):
        model = tiny_bert()
        ticket = mixed_ticket(model)
        callback = TicketCallback(ticket if ticket_arg == "given" else None)
        trainer = Trainer(
            model=model, args=training_args(output_dir, max_steps=8), train_dataset=to_dataset(64, 1),
            data_collator=collate, callbacks=[callback],
        )  # fmt: skip
        if max_steps < 8:
            trainer.add_callback(_StopAt(max_steps))
        trainer.train(resume_from_checkpoint=resume or None)
        return model, ticket, callback

    full, ticket, _ = run(tmp_path / "full", 8)
    run(tmp_path / "interrupted", 4)
    assert (tmp_path / "interrupted" / "checkpoint-4" / "hf_lottery_ticket").is_dir()
    resumed, _, callback = run(tmp_path / "interrupted", 8, resume=True, ticket_arg="from-checkpoint")
    assert callback.ticket.masks_equal(ticket)  # restored from the checkpoint, no flag needed
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert all((values == 0).all() for values in pruned_entries(resumed, ticket).values())


class _StopAt(TrainerCallback):  # stops training early, like a crash after a checkpoint
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def test_resume_with_another_ticket_is_refused(tmp_path):
    model = tiny_bert()
    args = training_args(tmp_path, max_steps=4)
    Trainer(model=model, args=args, train_dataset=to_dataset(64, 1), data_collator=collate,
            callbacks=[TicketCallback(mixed_ticket(model))]).train()  # fmt: skip
    other = LotteryTicket.full(model)
    trainer = Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=8), train_dataset=to_dataset(64, 1),
                      data_collator=collate, callbacks=[TicketCallback(other)])  # fmt: skip
    with pytest.raises(ValueError, match="another ticket"):
        trainer.train(resume_from_checkpoint=True)


@pytest.mark.parametrize("callback_cls", [StructuredPruningCallback, MagnitudePruningCallback])
def test_pruning_callbacks_find_and_save_a_ticket_at_train_end(tmp_path, callback_cls):
    model = tiny_bert()
    dev = to_dataset(48, 3)
    steps = {"structured_max_steps": 2} if callback_cls is StructuredPruningCallback else {"magnitude_max_steps": 2}
    callback = callback_cls(
        eval_dataset=dev, metric=accuracy, on_degenerate="ignore", search_batch_size=16, data_collator=collate, **steps
    )
    trainer = Trainer(
        model=model, args=training_args(tmp_path), train_dataset=to_dataset(64, 1), data_collator=collate,
        callbacks=[callback],
    )  # fmt: skip
    trainer.train()
    assert callback.ticket is not None
    saved = LotteryTicket.from_pretrained(callback.ticket_dir)
    assert saved == callback.ticket
    assert saved.method == callback_cls.method and len(saved.history) >= 2
    assert callback.ticket_dir == str(tmp_path / f"{callback_cls.method}_ticket")
    config = json.loads((tmp_path / f"{callback_cls.method}_ticket" / "ticket_config.json").read_text())
    assert config["search_data"] == "dev"


def test_pruning_callback_takes_the_trainers_compute_metrics(tmp_path):
    def compute_metrics(eval_prediction):
        return {"accuracy": accuracy(eval_prediction.predictions, eval_prediction.label_ids)}

    callback = StructuredPruningCallback(
        eval_dataset=to_dataset(32, 3), compute_metrics=compute_metrics, metric_key="accuracy", on_degenerate="ignore",
        structured_max_steps=1, data_collator=collate,
    )  # fmt: skip
    Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=2), train_dataset=to_dataset(32, 1),
            data_collator=collate, callbacks=[callback]).train()  # fmt: skip
    assert callback.ticket.metrics["full_metric"] == callback.ticket.history[0]["metric"]


def test_pruning_callbacks_explain_missing_data_and_metric():
    with pytest.raises(ValueError, match="callbacks do not receive the Trainer's eval_dataset"):
        StructuredPruningCallback(metric="sst2")
    with pytest.raises(ValueError, match="needs a metric"):
        MagnitudePruningCallback(eval_dataset=to_dataset(8, 1))
    with pytest.raises(ValueError, match="metric_key"):
        StructuredPruningCallback(eval_dataset=to_dataset(8, 1), compute_metrics=lambda p: {})
    callback = StructuredPruningCallback(eval_dataset=to_dataset(8, 1), metric=accuracy)
    with pytest.raises(ValueError, match="pass `data_collator=`"):
        callback.search.run(tiny_bert())


def test_ticket_callback_applies_during_evaluation_only_runs(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    Trainer(model=model, args=training_args(tmp_path), data_collator=collate, callbacks=[TicketCallback(ticket)])
    batch = collate(to_dataset(4, 2).to_list())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        gated = model(**inputs).logits
    reference = tiny_bert()
    with apply_ticket(reference, ticket), torch.no_grad():
        torch.testing.assert_close(gated, reference(**inputs).logits)


# ---------------------------------------------------------------------- settings, saved models, provenance, logs
def test_search_settings_are_checked_at_construction():
    dev = to_dataset(8, 1)
    with pytest.raises(TypeError, match="thresold"):
        StructuredPruningCallback(eval_dataset=dev, metric="sst2", thresold=0.8)
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\]"):
        MagnitudePruningCallback(eval_dataset=dev, metric="sst2", threshold=1.5)
    from hf_lottery import TicketSearchConfig

    callback = StructuredPruningCallback(eval_dataset=dev, metric="sst2", config=TicketSearchConfig(head_fraction=0.2),
                                         threshold=0.8)  # fmt: skip
    assert (callback.config.head_fraction, callback.config.threshold) == (0.2, 0.8)


def test_save_model_and_checkpoints_hold_the_pruned_model(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from hf_lottery.files import CONFIG_TICKET_KEY

    model = tiny_bert()
    ticket = structured_ticket(model)
    callback = TicketCallback(ticket)
    trainer = Trainer(model=model, args=training_args(tmp_path), train_dataset=to_dataset(64, 1),
                      data_collator=collate, callbacks=[callback])  # fmt: skip
    trainer.train()
    trainer.save_model(tmp_path / "out")  # fires no callback: the weights themselves hold the ticket
    batch = collate(to_dataset(8, 2).to_list())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.eval()
    with torch.no_grad():
        gated = model(**inputs).logits
        reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
        torch.testing.assert_close(reloaded(**inputs).logits, gated, atol=1e-5, rtol=0)
        callback.handle.remove(restore_weights=True)  # the pre-training values come back: other logits
        assert not torch.allclose(model(**inputs).logits, gated, atol=1e-4)
    assert CONFIG_TICKET_KEY in reloaded.config.to_dict()
    assert CONFIG_TICKET_KEY not in model.config.to_dict()  # remove() took the entry out
    for step in (4, 8):
        saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / f"checkpoint-{step}")
        assert all(bool((w == 0).all()) for w in structured_entries(saved, ticket)), step


def test_resume_finds_the_checkpoint_by_its_trainer_state(tmp_path):
    model = tiny_bert()
    ticket = mixed_ticket(model)
    Trainer(model=model, args=training_args(tmp_path, max_steps=4, save_steps=2), train_dataset=to_dataset(64, 1),
            data_collator=collate, callbacks=[TicketCallback(ticket), _StopAt(2)]).train()  # fmt: skip
    (tmp_path / "checkpoint-2").rename(tmp_path / "checkpoint-0002")  # still the Trainer's last checkpoint
    callback = TicketCallback()  # no ticket given: it must come from checkpoint-0002
    Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=4, save_steps=2), train_dataset=to_dataset(64, 1),
            data_collator=collate, callbacks=[callback]).train(resume_from_checkpoint=True)  # fmt: skip
    assert callback.ticket.masks_equal(ticket)
    # a checkpoint outside output_dir is found through args.resume_from_checkpoint
    elsewhere = tmp_path / "moved"
    (tmp_path / "checkpoint-0002").rename(elsewhere)
    callback = TicketCallback()
    args = training_args(tmp_path / "other", max_steps=4, save_steps=2, resume_from_checkpoint=str(elsewhere))
    Trainer(model=tiny_bert(), args=args, train_dataset=to_dataset(64, 1), data_collator=collate,
            callbacks=[callback]).train(resume_from_checkpoint=str(elsewhere))  # fmt: skip
    assert callback.ticket.masks_equal(ticket)


class _Recorder(TrainerCallback):  # stands for a report_to integration
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def test_search_results_reach_log_history_report_to_and_the_ticket(tmp_path, tiny_pretrained_classifier, caplog):
    import logging

    import transformers

    from hf_lottery.files import CONFIG_BASE_MODEL_KEY

    recorder = _Recorder()
    model = tiny_pretrained_classifier
    callback = StructuredPruningCallback(eval_dataset=to_dataset(32, 3), metric="sst2", data_collator=collate,
                                         structured_max_steps=1, on_degenerate="ignore")  # fmt: skip
    package = logging.getLogger("hf_lottery")
    package.setLevel(logging.NOTSET)  # the library default: follow transformers (a CLI run in this process set INFO)
    package.addHandler(caplog.handler)
    transformers.logging.set_verbosity_info()
    try:
        trainer = Trainer(model=model, args=training_args(tmp_path, max_steps=2), train_dataset=to_dataset(32, 1),
                          data_collator=collate, callbacks=[recorder, callback])  # fmt: skip
        callback.attach(trainer)  # the public route to Trainer.log and its report_to integrations
        trainer.train()
        assert "Structured ticket saved in" in caplog.text  # info lines follow transformers' verbosity
        caplog.clear()
        transformers.logging.set_verbosity_warning()
        callback.on_train_end(trainer.args, trainer.state, trainer.control, model=model)
        assert "Structured ticket saved in" not in caplog.text
    finally:
        transformers.logging.set_verbosity_warning()
        package.removeHandler(caplog.handler)
    entry = trainer.state.log_history[-1]
    assert entry["lottery/structured_metric"] == callback.ticket.metrics["metric"]
    assert entry["lottery/structured_heads_kept"] == callback.ticket.head_mask.sum().item()
    assert any("lottery/structured_metric" in logs for logs in recorder.logs)
    ticket = callback.ticket
    pretrained = model.config.to_dict()[CONFIG_BASE_MODEL_KEY]
    assert (ticket.seed, ticket.task, ticket.metrics["metric_name"], ticket.base_model) == (
        7,
        "sst2",
        "accuracy",
        pretrained,
    )
    assert LotteryTicket.from_pretrained(callback.ticket_dir).metrics["metric_name"] == "accuracy"


def test_a_search_without_a_known_base_model_warns_and_records_none(tmp_path, caplog):
    import logging

    callback = MagnitudePruningCallback(eval_dataset=to_dataset(32, 3), metric=accuracy, data_collator=collate,
                                        magnitude_max_steps=1, on_degenerate="ignore")  # fmt: skip
    logging.getLogger("hf_lottery").addHandler(caplog.handler)
    try:
        Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=2), train_dataset=to_dataset(32, 1),
                data_collator=collate, callbacks=[callback]).train()  # fmt: skip
    finally:
        logging.getLogger("hf_lottery").removeHandler(caplog.handler)
    assert callback.ticket.base_model is None
    assert "records no base_model" in caplog.text


def test_progress_bars_follow_disable_tqdm(tmp_path, capsys):
    for disable in (True, False):
        callback = StructuredPruningCallback(eval_dataset=to_dataset(32, 3), metric=accuracy, data_collator=collate,
                                             structured_max_steps=1, on_degenerate="ignore",
                                             output_dir=tmp_path / f"ticket{disable}")  # fmt: skip
        Trainer(model=tiny_bert(), args=training_args(tmp_path / str(disable), max_steps=1, disable_tqdm=disable),
                train_dataset=to_dataset(16, 1), data_collator=collate, callbacks=[callback]).train()  # fmt: skip
        shown = "structured search" in capsys.readouterr().err
        assert shown is not disable


def test_push_callback_falls_back_to_the_trainers_hub_arguments(tmp_path, monkeypatch):
    from hf_lottery import callbacks as integration
    from trainer_callbacks import PushToHubCallback

    pushed = {}
    monkeypatch.setattr(integration, "push_to_hub", lambda model, ticket, repo_id, **kw: pushed.update(
        repo_id=repo_id, **kw) or "https://hub/commit")  # fmt: skip
    model = tiny_bert()
    ticket = structured_ticket(model)
    args = training_args(tmp_path, max_steps=1, hub_model_id="me/ticket", hub_token="hf_fake", hub_private_repo=True)
    push = PushToHubCallback(ticket=ticket)
    Trainer(model=model, args=args, train_dataset=to_dataset(8, 1), data_collator=collate,
            callbacks=[TicketCallback(ticket), push]).train()  # fmt: skip
    assert (pushed["repo_id"], pushed["token"], pushed["private"]) == ("me/ticket", "hf_fake", True)
    assert pushed["staging_dir"] == str(tmp_path / "hub_staging")
    assert "hf_fake" not in repr(push)
    with pytest.raises(ValueError, match="hub_model_id"):
        PushToHubCallback(ticket=ticket).hub_settings(training_args(tmp_path))


def test_push_callback_reports_metric_keys_only(tmp_path, monkeypatch):
    from hf_lottery import callbacks as integration
    from trainer_callbacks import PushToHubCallback

    pushed = {}
    monkeypatch.setattr(integration, "push_to_hub", lambda model, ticket, repo_id, **kw: pushed.update(kw) or "url")
    model = tiny_bert()
    ticket = structured_ticket(model)
    args = training_args(tmp_path, max_steps=2, eval_strategy="steps", eval_steps=2, save_strategy="no")
    Trainer(model=model, args=args, train_dataset=to_dataset(16, 1), eval_dataset=to_dataset(8, 2),
            data_collator=collate, compute_metrics=lambda p: {"accuracy": accuracy(p.predictions, p.label_ids)},
            callbacks=[TicketCallback(ticket), PushToHubCallback("me/x", ticket=ticket)]).train()  # fmt: skip
    assert list(pushed["metrics"]) == ["accuracy"]  # no loss, runtime, throughput or epoch
