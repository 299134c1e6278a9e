"""Bad inputs to the Trainer integration: callbacks, LotteryArguments / LotteryTrainer, apply_ticket, IMP."""

from __future__ import annotations

import torch

from hf_lottery import LotteryTicket, apply_ticket

from ..conftest import tiny_bert
from ..trainer_helpers import collate, to_dataset, training_args
from . import BadInput


def _ticket(model) -> LotteryTicket:
    head_mask = torch.ones(3, 4, dtype=torch.bool)
    head_mask[0, 1] = False
    return LotteryTicket.full(model, kind="custom").copy(head_mask=head_mask)


def _callback(**kwargs):
    def call(tmp_path):
        from trainer_callbacks import StructuredPruningCallback

        return StructuredPruningCallback(**kwargs)

    return call


def _lottery_args(**kwargs):
    def call(tmp_path):
        from hf_lottery.trainer import LotteryArguments

        return LotteryArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **kwargs)

    return call


def _twice(tmp_path):
    model = tiny_bert()
    apply_ticket(model, _ticket(model))
    apply_ticket(model, _ticket(model))


def _compiled(tmp_path):
    model = tiny_bert()
    apply_ticket(torch.compile(model, backend="eager"), _ticket(model))


def _imp(**kwargs):
    def call(tmp_path):
        from hf_lottery.imp import find_imp_ticket

        values = dict(train_dataset=to_dataset(8, 1), eval_dataset=to_dataset(8, 2), metric="sst2")
        values.update(kwargs)
        return find_imp_ticket(tiny_bert(), training_args(tmp_path), data_collator=collate, **values)

    return call


def _trainer_with_plain_arguments(tmp_path):
    from hf_lottery.trainer import LotteryTrainer

    LotteryTrainer(model=tiny_bert(), args=training_args(tmp_path))


def _ticket_callback_without_ticket(tmp_path):
    from transformers import Trainer

    from trainer_callbacks import TicketCallback

    trainer = Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=1), train_dataset=to_dataset(8, 1),
                      data_collator=collate, callbacks=[TicketCallback()])  # fmt: skip
    trainer.train()


def _push_without_repo(tmp_path):
    from trainer_callbacks import PushToHubCallback

    model = tiny_bert()
    PushToHubCallback(ticket=_ticket(model)).hub_settings(training_args(tmp_path))


def _search_without_held_out_data(tmp_path):
    from hf_lottery.trainer import LotteryArguments, LotteryTrainer

    args = LotteryArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, search_data="held-out")
    LotteryTrainer(model=tiny_bert(), args=args, eval_dataset=to_dataset(8, 1)).find_structured_ticket()


DEV = to_dataset(8, 1)

CASES = [
    BadInput("callback-misspelled-setting", "training", _callback(eval_dataset=DEV, metric="sst2", thresold=0.8),
             TypeError, r"Unknown search setting.*thresold"),
    BadInput("callback-threshold-above-one", "training", _callback(eval_dataset=DEV, metric="sst2", threshold=1.5),
             ValueError, r"`threshold` must be in \(0, 1\]"),
    BadInput("callback-without-search-data", "training", _callback(metric="sst2"), ValueError,
             r"Pass `eval_dataset=`"),
    BadInput("callback-without-metric", "training", _callback(eval_dataset=DEV), ValueError, r"needs a metric"),
    BadInput("lottery-args-threshold-zero", "training", _lottery_args(threshold=0), ValueError, r"`threshold`"),
    BadInput("lottery-args-search-data-typo", "training", _lottery_args(search_data="test"), ValueError,
             r"`search_data` must be one of"),
    BadInput("lottery-args-head-fraction-two", "training", _lottery_args(head_fraction=2), ValueError,
             r"`head_fraction`"),
    BadInput("lottery-trainer-plain-arguments", "training", _trainer_with_plain_arguments, TypeError,
             r"LotteryArguments"),
    BadInput("lottery-trainer-held-out-without-data", "training", _search_without_held_out_data, ValueError,
             r"held-out.*search_dataset"),
    BadInput("apply-ticket-twice", "training", _twice, ValueError, r"already applied.*\.remove\(\)"),
    BadInput("apply-ticket-compiled-model", "training", _compiled, ValueError, r"Apply the ticket before compiling"),
    BadInput("ticket-callback-without-ticket", "training", _ticket_callback_without_ticket, ValueError,
             r"TicketCallback needs a ticket"),
    BadInput("push-callback-without-repo", "training", _push_without_repo, ValueError, r"hub_model_id"),
    BadInput("imp-zero-rounds", "training", _imp(rounds=0), ValueError, r"`rounds` must be an integer >= 1"),
    BadInput("imp-negative-rewind-step", "training", _imp(rewind_step=-1), ValueError, r"`rewind_step`"),
    BadInput("imp-without-eval-data", "training", _imp(eval_dataset=None), ValueError, r"eval_dataset"),
    BadInput("imp-misspelled-setting", "training", _imp(prune_fraction=0.2), TypeError,
             r"Unknown search setting.*prune_fraction"),
]  # fmt: skip
