"""One rule for the pre-trained model a ticket rewinds to, whichever entry point finds the ticket."""

from transformers import BertForSequenceClassification, BertModel

from hf_lottery import LotteryTicket
from hf_lottery.files import CONFIG_BASE_MODEL_KEY
from hf_lottery.provenance import base_model_id, base_model_of

from .conftest import tiny_config


def resolve_base_model(model, given=None):
    return base_model_of(model, given)


def cli_base_model(model, name, given):  # what `hf-lottery find` asks
    return base_model_of(model, given, searched=base_model_id(name))


def test_every_entry_point_names_the_same_base_model(tmp_path, caplog):
    pretrained = tmp_path / "pretrained"
    BertModel(tiny_config("eager")).save_pretrained(pretrained)  # architectures: ["BertModel"]
    model = BertForSequenceClassification.from_pretrained(pretrained)
    # loaded for fine-tuning: `_name_or_path` is its pre-trained model
    assert resolve_base_model(model) == str(pretrained)
    assert LotteryTicket.full(model).base_model == str(pretrained)
    assert cli_base_model(model, "some/other-model", None) == str(pretrained.resolve())
    assert cli_base_model(model, str(pretrained), None) is None  # never the searched model itself

    finetuned = tmp_path / "finetuned"
    model.save_pretrained(finetuned)  # architectures: ["BertForSequenceClassification"]
    back = BertForSequenceClassification.from_pretrained(finetuned)
    assert resolve_base_model(back) is None
    assert LotteryTicket.full(back).base_model is None
    assert cli_base_model(back, str(finetuned), None) is None
    # what the user gives wins, then what fine-tuning recorded
    assert resolve_base_model(back, "bert-base-uncased") == "bert-base-uncased"
    assert cli_base_model(back, str(finetuned), "bert-base-uncased") == "bert-base-uncased"
    setattr(back.config, CONFIG_BASE_MODEL_KEY, "google-bert/bert-base-uncased")
    assert resolve_base_model(back) == "google-bert/bert-base-uncased"
    assert LotteryTicket.full(back).base_model == "google-bert/bert-base-uncased"
    assert cli_base_model(back, str(finetuned), None) == "google-bert/bert-base-uncased"
