"""Where a pipeline run keeps its files: the one module that knows the run folder's layout.

```
OUTPUT_DIR/
  run_config.json                         settings, fingerprint, commands (token-free), versions
  seed_S/finetuned/                       fine-tuned model + tokenizer, result.json (done marker)
  seed_S/tickets/METHOD/KIND/             ticket folders (METHOD: structured, magnitude, imp; KIND: good, random, bad)
  seed_S/pruned/result.json               every ticket applied to the fine-tuned model, no retraining
  seed_S/retrained/METHOD_KIND/           result.json (+ model/ with --save_retrained_models)
  super/tickets/structured/KIND/          super tickets across seeds
  patterns/result.json                    attention patterns of the first seed's heads
  report/                                 report.md, results.json, results.csv, plots/
```

Every unit of work ends by writing its ``result.json`` (its done marker) atomically; Trainer work folders live in
``OUTPUT_DIR/.work`` and are removed when the unit is done (nothing of value is written there).

Example:

```python
>>> layout = RunLayout("runs/mrpc")
>>> layout.ticket_dir(42, "structured", "good").as_posix()
'runs/mrpc/seed_42/tickets/structured/good'
>>> layout.ticket_dir("super", "structured", "bad").as_posix()
'runs/mrpc/super/tickets/structured/bad'
>>> layout.retrained_dir(42, "super/good").as_posix()
'runs/mrpc/seed_42/retrained/super_good'

```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..files import TICKET_CONFIG_NAME


DONE = "result.json"
RUN_CONFIG = "run_config.json"


class RunLayout:
    """Paths of one run folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def run_config(self) -> Path:
        return self.root / RUN_CONFIG

    def seed_dir(self, seed: int) -> Path:
        return self.root / f"seed_{seed}"

    def finetuned_dir(self, seed: int) -> Path:
        return self.seed_dir(seed) / "finetuned"

    def ticket_dir(self, seed: int | str, method: str, kind: str) -> Path:
        base = self.root / "super" if seed == "super" else self.seed_dir(int(seed))
        return base / "tickets" / method / kind

    def pruned_dir(self, seed: int) -> Path:
        return self.seed_dir(seed) / "pruned"

    def retrained_dir(self, seed: int, name: str) -> Path:
        """``name`` is ``method/kind`` (or ``super/kind``)."""
        return self.seed_dir(seed) / "retrained" / name.replace("/", "_")

    def retrained_results(self, seed: int) -> list[Path]:
        return sorted((self.seed_dir(seed) / "retrained").glob(f"*/{DONE}"))

    @property
    def patterns_dir(self) -> Path:
        return self.root / "patterns"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def plots_dir(self) -> Path:
        return self.report_dir / "plots"

    def work_dir(self, *parts: str | int) -> Path:
        """A scratch folder for a Trainer (deleted when its unit is done; never holds a result)."""
        return self.root.joinpath(".work", *map(str, parts))

    @staticmethod
    def done(folder: Path) -> dict[str, Any] | None:
        """The unit's result when its done marker exists, else None."""
        path = folder / DONE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    @staticmethod
    def has_ticket(folder: Path) -> bool:
        return (folder / TICKET_CONFIG_NAME).is_file()

    def ticket_folders(self, seeds: list[int]) -> dict[tuple[int | str, str, str], Path]:
        """Every ticket folder on disk: ``(seed or "super", method, kind) -> folder``."""
        found: dict[tuple[int | str, str, str], Path] = {}
        for seed in [*seeds, "super"]:
            base = self.root / "super" if seed == "super" else self.seed_dir(seed)
            for config in sorted((base / "tickets").glob(f"*/*/{TICKET_CONFIG_NAME}")):
                found[(seed, config.parent.parent.name, config.parent.name)] = config.parent
        return found
