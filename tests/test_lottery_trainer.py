import pytest
import torch
from transformers import BertModel, TrainerCallback

from hf_lottery import EncoderStructure, LotteryTicket
from hf_lottery.trainer import LotteryArguments, LotteryTrainer

from .conftest import tiny_bert, tiny_config
from .science_helpers import accuracy
from .test_gates import magnitude_ticket, structured_ticket
from .trainer_helpers import collate, to_dataset


def lottery_args(output_dir, **overrides):
    values = dict(
        output_dir=str(output_dir), per_device_train_batch_size=8, learning_rate=5e-3, max_steps=6, save_steps=3,
        logging_strategy="no", report_to="none", use_cpu=True, seed=7, disable_tqdm=True, on_degenerate="ignore",
        search_batch_size=16, lottery_metric_key="accuracy",
    )  # fmt: skip
    values.update(overrides)
    return LotteryArguments(**values)


def compute_metrics(prediction):
    return {"accuracy": accuracy(prediction.predictions, prediction.label_ids)}


def test_paper_defaults_and_validation(tmp_path):
    args = LotteryArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    assert (args.learning_rate, args.per_device_train_batch_size, args.num_train_epochs) == (2e-5, 32, 3)
    assert (args.adam_epsilon, args.weight_decay, args.max_grad_norm, args.threshold) == (1e-8, 0.0, 1.0, 0.9)
    with pytest.raises(ValueError, match="search_data"):
        LotteryArguments(output_dir=str(tmp_path), search_data="test", report_to="none")
    with pytest.raises(TypeError, match="LotteryArguments"):
        from transformers import TrainingArguments

        LotteryTrainer(model=tiny_bert(), args=TrainingArguments(output_dir=str(tmp_path), report_to="none"))


def test_find_tickets_then_retrain_from_rewound_weights(tmp_path):
    torch.manual_seed(0)
    pretrained = BertModel(tiny_config())
    pretrained.save_pretrained(tmp_path / "pretrained")
    model = tiny_bert()
    args = lottery_args(tmp_path / "run", base_model_name_or_path=str(tmp_path / "pretrained"))
    trainer = LotteryTrainer(
        model=model, args=args, train_dataset=to_dataset(48, 1), eval_dataset=to_dataset(32, 2),
        data_collator=collate, compute_metrics=compute_metrics,
    )  # fmt: skip
    trainer.train()
    structured = trainer.find_structured_ticket(structured_max_steps=2)
    magnitude = trainer.find_magnitude_ticket(magnitude_max_steps=2)
    assert structured.base_model == str(tmp_path / "pretrained") and structured.seed == 7
    assert LotteryTicket.from_pretrained(tmp_path / "run" / "structured_ticket") == structured
    assert LotteryTicket.from_pretrained(tmp_path / "run" / "magnitude_ticket") == magnitude
    ticket = structured.copy(weight_masks=magnitude.weight_masks, method="magnitude")
    retrain = LotteryTrainer.from_ticket(
        ticket, lottery_args(tmp_path / "retrain"), pretrained_model_name_or_path=str(tmp_path / "pretrained"),
        num_labels=2, train_dataset=to_dataset(48, 1), data_collator=collate,
    )  # fmt: skip
    retrain.train()
    params = EncoderStructure(retrain.model).named_encoder_parameters()
    for name, mask in ticket.weight_masks.items():
        assert (params[name].detach()[~mask] == 0).all(), name
    assert LotteryTicket.from_pretrained(tmp_path / "retrain" / "checkpoint-3" / "hf_lottery_ticket").masks_equal(
        ticket
    )


def test_resume_restores_the_ticket_from_the_checkpoint(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    LotteryTrainer(model=model, args=lottery_args(tmp_path, max_steps=3), ticket=ticket,
                   train_dataset=to_dataset(48, 1), data_collator=collate).train()  # fmt: skip
    resumed = LotteryTrainer(model=tiny_bert(), args=lottery_args(tmp_path, max_steps=6),
                             train_dataset=to_dataset(48, 1), data_collator=collate)  # fmt: skip
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert resumed.ticket_training.ticket.masks_equal(ticket)
    params = EncoderStructure(resumed.model).named_encoder_parameters()
    assert all((params[n].detach()[~m] == 0).all() for n, m in ticket.weight_masks.items())


def test_held_out_needs_search_data(tmp_path):
    trainer = LotteryTrainer(model=tiny_bert(), args=lottery_args(tmp_path, search_data="held-out"),
                             eval_dataset=to_dataset(8, 1), data_collator=collate, compute_metrics=compute_metrics)  # fmt: skip
    with pytest.raises(ValueError, match="held-out"):
        trainer.find_structured_ticket()


def test_arguments_parse_with_hf_argument_parser_and_declare_no_search_field(tmp_path):
    from dataclasses import fields

    from transformers import HfArgumentParser

    from hf_lottery import TicketSearchConfig

    (args,) = HfArgumentParser(LotteryArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--threshold", "0.8", "--warmup_steps", "3"]
    )
    assert (args.threshold, args.warmup_steps, args.learning_rate, args.per_device_train_batch_size) == (
        0.8, 3, 2e-5, 32)  # fmt: skip
    assert args.search_config() == TicketSearchConfig(threshold=0.8)
    own = set(LotteryArguments.__dataclass_fields__) - set(TicketSearchConfig.__dataclass_fields__)
    assert {f.name for f in fields(TicketSearchConfig)} <= set(LotteryArguments.__dataclass_fields__)
    assert not {"lottery_threshold", "importance_source"} & own
    with pytest.raises(ValueError, match="`head_fraction`"):
        LotteryArguments(output_dir=str(tmp_path), head_fraction=0, report_to="none")


def test_no_private_trainer_method_is_overridden():
    from transformers import Trainer

    private = [n for n in vars(LotteryTrainer) if n.startswith("_") and not n.startswith("__") and hasattr(Trainer, n)]
    assert private == []


def test_from_ticket_keeps_the_rewound_handle_and_saves_a_pruned_model(tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from hf_lottery import trainer as trainer_module
    from hf_lottery.files import CONFIG_BASE_MODEL_KEY
    from hf_lottery.gates import active_handles

    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(tmp_path / "pretrained")
    ticket = structured_ticket(tiny_bert())
    handles = []
    real = trainer_module.rewind
    monkeypatch.setattr(
        trainer_module, "rewind", lambda *a, **k: (lambda r: (handles.append(r[1]), r)[1])(real(*a, **k))
    )
    trainer = LotteryTrainer.from_ticket(
        ticket, lottery_args(tmp_path / "run", max_steps=2), pretrained_model_name_or_path=str(tmp_path / "pretrained"),
        num_labels=2, train_dataset=to_dataset(16, 1), data_collator=collate,
    )  # fmt: skip
    assert active_handles(trainer.model) == handles and trainer.ticket_training.handle is handles[0]
    trainer.train()
    assert active_handles(trainer.model) == handles  # never removed and re-applied
    trainer.save_model(tmp_path / "out")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert reloaded.config.to_dict()[CONFIG_BASE_MODEL_KEY] == str(tmp_path / "pretrained")
    batch = collate(to_dataset(4, 2).to_list())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(**inputs).logits, trainer.model(**inputs).logits, atol=1e-5, rtol=0)


def test_from_ticket_compact_trains_the_smaller_model(tmp_path):
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(tmp_path / "pretrained")
    ticket = structured_ticket(tiny_bert())
    trainer = LotteryTrainer.from_ticket(
        ticket, lottery_args(tmp_path / "run", max_steps=2), pretrained_model_name_or_path=str(tmp_path / "pretrained"),
        num_labels=2, compact=True, train_dataset=to_dataset(16, 1), data_collator=collate,
    )  # fmt: skip
    assert EncoderStructure(trainer.model).heads_per_layer == ticket.head_mask.sum(dim=1).tolist()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_search_results_go_through_the_trainers_log(tmp_path):
    recorded = []

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            recorded.append(dict(logs))

    trainer = LotteryTrainer(model=tiny_bert(), args=lottery_args(tmp_path), eval_dataset=to_dataset(32, 2),
                             data_collator=collate, compute_metrics=compute_metrics, callbacks=[Recorder()])  # fmt: skip
    ticket = trainer.find_magnitude_ticket(magnitude_max_steps=1)
    assert trainer.state.log_history[-1]["lottery/magnitude_sparsity"] == pytest.approx(ticket.sparsity)
    assert recorded[-1]["lottery/magnitude_metric"] == ticket.metrics["metric"]
    with pytest.raises(TypeError, match="thresold"):
        trainer.find_structured_ticket(thresold=0.5)


def test_find_imp_ticket_from_the_trainer(tmp_path):
    args = lottery_args(tmp_path, max_steps=2, threshold=0.01, base_model_name_or_path="tiny-pretrained")
    trainer = LotteryTrainer(model=tiny_bert(), args=args,
                             train_dataset=to_dataset(16, 1), eval_dataset=to_dataset(16, 2), data_collator=collate,
                             compute_metrics=compute_metrics)  # fmt: skip
    ticket = trainer.find_imp_ticket(rounds=1)
    assert ticket.base_model == "tiny-pretrained"
    assert [round(h["sparsity"], 2) for h in ticket.history] == [0.0, 0.1]
    assert (tmp_path / "imp_ticket" / "round_1" / "result.json").is_file()
    assert trainer.state.log_history[-1]["lottery/magnitude_sparsity"] == pytest.approx(ticket.sparsity)


def test_from_ticket_with_the_parent_runs_args_retrains_in_a_sub_folder(tmp_path):
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(tmp_path / "pretrained")
    args = lottery_args(tmp_path / "run", max_steps=3, base_model_name_or_path=str(tmp_path / "pretrained"))
    parent = LotteryTrainer(model=tiny_bert(), args=args, train_dataset=to_dataset(24, 1), data_collator=collate)
    parent.train()
    checkpoint = tmp_path / "run" / "checkpoint-3"
    before = {p.relative_to(checkpoint): p.read_bytes() for p in checkpoint.rglob("*") if p.is_file()}
    ticket = structured_ticket(parent.model)
    retrain = LotteryTrainer.from_ticket(ticket, args, num_labels=2, train_dataset=to_dataset(24, 2),
                                         data_collator=collate)  # fmt: skip
    assert retrain.args.output_dir == str(tmp_path / "run" / f"retrain-structured-{ticket.kind}")
    assert (retrain.args.max_steps, args.output_dir) == (3, str(tmp_path / "run"))  # a copy; the parent's unchanged
    retrain.train()
    assert (tmp_path / "run" / f"retrain-structured-{ticket.kind}" / "checkpoint-3" / "hf_lottery_ticket").is_dir()
    assert {p.relative_to(checkpoint): p.read_bytes() for p in checkpoint.rglob("*") if p.is_file()} == before
    own = LotteryTrainer.from_ticket(ticket, lottery_args(tmp_path / "own"), num_labels=2,
                                     pretrained_model_name_or_path=str(tmp_path / "pretrained"))  # fmt: skip
    assert own.args.output_dir == str(tmp_path / "own")  # args of its own: used as given
