"""Analysis of tickets across seeds and tasks: agreement statistics and plots."""

from .agreement import Agreement, agreement_table, iou, mask_agreement, mean_pairwise_jaccard, task_overlap


__all__ = ["Agreement", "agreement_table", "iou", "mask_agreement", "mean_pairwise_jaccard", "task_overlap"]
