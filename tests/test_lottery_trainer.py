import pytest
import torch
from transformers import BertModel

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
