import numpy as np
import pytest
import torch

from hf_lottery import load_legacy_ticket
from hf_lottery.analysis import agreement_table, mask_agreement, task_overlap

from .conftest import SEED_MASKS_DIR, require_shared


SEEDS = (1337, 166, 42, 71, 86)
# EXPECTED.md of the paper's masks: heads kept per seed, Fleiss κ, IoU, heads kept in all 5, Cochran's Q p
EXPECTED = {
    "CoLA": ([95, 67, 81, 102, 116], 0.23, 0.25, 34, 2.1e-11),
    "SST-2": ([88, 46, 74, 60, 67], 0.32, 0.17, 19, 3.4e-08),
    "MRPC": ([88, 102, 81, 81, 95], 0.22, 0.20, 28, 0.014),
    "RTE": ([18, 88, 116, 74, 74], 0.18, 0.09, 11, 2.7e-36),
    "WNLI": ([0, 0, 0, 0, 144], -0.25, 0.00, 0, 2.4e-123),
}


def paper_tickets(task):
    root = require_shared(SEED_MASKS_DIR / task)
    return [load_legacy_ticket(root / f"seed_{seed}") for seed in SEEDS]


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_reproduces_the_papers_statistics(task):
    kept, kappa, iou, survivors, pvalue = EXPECTED[task]
    result = mask_agreement(paper_tickets(task))
    assert result.heads_kept == kept
    assert round(result.fleiss_kappa, 2) == kappa
    assert round(result.iou, 2) == iou
    assert result.heads_kept_in_all == survivors
    assert float(f"{result.cochrans_q_pvalue:.2g}") == pvalue
    assert sum(map(sum, result.survivor_head_mask)) == survivors


def test_wnli_degenerate_case_is_reported_not_crashing():
    result = mask_agreement(paper_tickets("WNLI"))
    assert any("keeps no head" in note for note in result.notes)
    assert "WNLI" in agreement_table({"WNLI": result})


def test_hand_computed_small_case():
    a = torch.tensor([[1, 1, 0, 0]])
    b = torch.tensor([[1, 0, 1, 0]])
    c = torch.tensor([[1, 1, 1, 0]])
    result = mask_agreement([(a, torch.tensor([1, 0])), (b, torch.tensor([1, 1])), (c, torch.tensor([1, 0]))])
    assert result.iou == 1 / 3  # kept by all: head 0; kept by any: heads 0, 1, 2
    jaccards = [1 / 3, 2 / 3, 2 / 3]  # (a,b), (a,c), (b,c)
    assert result.mean_pairwise_jaccard == pytest.approx(np.mean(jaccards))
    # Fleiss kappa by hand: 4 subjects, 3 raters; counts kept/pruned per subject: (3,0) (2,1) (2,1) (0,3)
    p_kept = (3 + 2 + 2 + 0) / 12
    p_e = p_kept**2 + (1 - p_kept) ** 2
    per_subject = [(3 * 2 + 0) / 6, (2 * 1 + 1 * 0) / 6, (2 * 1 + 0) / 6, (0 + 3 * 2) / 6]
    p_bar = np.mean(per_subject)
    assert result.fleiss_kappa == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert result.heads_kept_in_all == 1 and result.mlps_kept_in_all == 1
    assert result.krippendorff_alpha_mlp is not None
    assert result.to_dict()["heads_kept"] == [2, 2, 3]


def test_krippendorff_alpha_undefined_when_all_agree():
    masks = [(torch.ones(2, 2), torch.ones(2)), (torch.ones(2, 2), torch.ones(2))]
    result = mask_agreement(masks)
    assert result.krippendorff_alpha_mlp is None
    assert any("undefined" in n for n in result.notes)


def test_task_overlap():
    t1 = [torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 1]])]  # survivors: heads 0, 1
    t2 = [torch.tensor([[0, 1, 1]]), torch.tensor([[1, 1, 1]])]  # survivors: heads 1, 2
    overlap = task_overlap({"a": t1, "b": t2})
    assert overlap == {"a/b": {"shared": 1, "jaccard": 1 / 3}}


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        mask_agreement([torch.ones(2, 2)])
    with pytest.raises(ValueError, match="same shape"):
        mask_agreement([torch.ones(2, 2), torch.ones(1, 4)])
    with pytest.raises(ValueError, match=r"\[layers, heads\]"):
        mask_agreement([torch.ones(4), torch.ones(4)])
