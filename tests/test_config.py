import dataclasses
import json

import pytest

from hf_lottery.config import RESULT_FIELDS, TicketSearchConfig, resolve_search_config


def test_defaults_are_the_papers():
    config = TicketSearchConfig()
    assert (config.threshold, config.head_fraction, config.magnitude_prune_fraction, config.magnitude_max_steps) == (
        0.9, 0.1, 0.1, 10,
    )  # fmt: skip
    assert (config.importance, config.search_data, config.paper_compat) == ("gradient", "dev", False)
    assert (config.target_sparsity, config.target_heads, config.target_mlps) == (None, None, None)


def test_round_trip_through_json_and_overrides():
    config = TicketSearchConfig(threshold=0.8, importance="fisher", target_heads=3)
    assert TicketSearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert resolve_search_config(config) is config
    changed = resolve_search_config(config, threshold=0.7)
    assert (changed.threshold, changed.target_heads, config.threshold) == (0.7, 3, 0.8)
    with pytest.raises(TypeError, match="must be a TicketSearchConfig; got dict"):
        resolve_search_config({"threshold": 0.8})
    with pytest.raises(TypeError, match=r"Unknown search setting\(s\) \['max_steps'\]"):
        resolve_search_config(max_steps=3)


def test_result_fields_per_method():
    config = TicketSearchConfig()
    assert set(config.result_fields("structured")) == set(RESULT_FIELDS["structured"])
    assert "head_fraction" not in config.result_fields("magnitude")
    assert "on_degenerate" not in config.result_fields("structured")  # warns differently, finds the same ticket
    with pytest.raises(ValueError, match="`method` must be one of"):
        config.result_fields("imp")


def test_fisher_has_no_paper_compat_mode():
    with pytest.raises(ValueError, match="`paper_compat`.*importance='fisher'"):
        TicketSearchConfig(importance="fisher", paper_compat=True)


def test_every_field_has_help_and_parses_with_hf_argument_parser():
    from transformers import HfArgumentParser

    for field in dataclasses.fields(TicketSearchConfig):
        assert field.metadata.get("help"), field.name
    (config,) = HfArgumentParser(TicketSearchConfig).parse_args_into_dataclasses(
        ["--threshold", "0.8", "--importance", "fisher", "--target_sparsity", "0.5"]
    )
    assert (config.threshold, config.importance, config.target_sparsity) == (0.8, "fisher", 0.5)
