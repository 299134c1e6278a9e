"""The `hf-lottery` sub-commands: name -> (module in `hf_lottery.commands`, one-line help).

A module of its own, importing nothing, so that `hf_lottery.cli` (which lists it in `--help`) and the command
modules (which take their help texts from it) both read it without importing each other.

Example:

```python
>>> from hf_lottery.commands.table import COMMANDS
>>> COMMANDS["demo"][0]
'pipeline'

```
"""

from __future__ import annotations


COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pipeline", "the whole pipeline on the embedded offline default (packaged MiniLM, generated demo task)"),
    "run": ("pipeline", "the paper's pipeline on a GLUE task (same flags as recipes/lottery_glue.py)"),
    "report": ("pipeline", "(re)build report.md, results.json/csv and plots of a run folder"),
    "find": ("pipeline", "find a ticket of a fine-tuned model (or re-run a recorded search with --like)"),
    "train": ("pipeline", "re-fine-tune a ticket from its pre-trained weights"),
    "evaluate": ("pipeline", "dev metrics of a model, optionally with a ticket applied"),
    "export": ("pipeline", "export a model (dense with ticket, or compact) to ONNX"),
    "env": ("pipeline", "print the versions and devices a bug report needs"),
    "show": ("tickets", "print a ticket's summary (local folder or Hub repo id)"),
    "import-legacy": ("tickets", "turn the paper's head_mask.npy / mlp_mask.npy folders into ticket folders"),
    "push": ("hub", "push a ticket (masks only) or, with --model_dir, the masked model + ticket + card to the Hub"),
    "download": ("hub", "load a pruned model from the Hub or a folder and save it"),
    "patterns": ("patterns", "train / evaluate the attention-pattern CNN, classify a model's heads"),
    "label-patterns": ("patterns", "label attention maps by hand into the paper's format"),
}
