import json

import pytest
import torch
from transformers import Trainer, TrainerCallback

from hf_lottery import EncoderStructure, LotteryTicket, apply_ticket
from trainer_callbacks import MagnitudePruningCallback, StructuredPruningCallback, TicketCallback

from .conftest import tiny_bert
from .science_helpers import accuracy
from .test_gates import magnitude_ticket, structured_ticket
from .trainer_helpers import collate, to_dataset, training_args


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
