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

Several tasks (``--task_name mrpc rte``): ``OUTPUT_DIR/run_config.json`` lists them, each task has a run folder as
above in ``OUTPUT_DIR/TASK``, and ``OUTPUT_DIR/report/`` holds the cross-task report.

Every unit of work ends by writing its ``result.json`` (its done marker) atomically; Trainer work folders live in
``OUTPUT_DIR/.work``, which a run makes and marks as its own, and are removed when the unit is done (nothing of value
is written there). Every path is inside ``OUTPUT_DIR``: a symlink leading out of it is refused (`atomic.inside`).

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
import shutil
from pathlib import Path
from typing import Any

from ..atomic import inside
from ..files import TICKET_CONFIG_NAME


DONE = "result.json"
RUN_CONFIG = "run_config.json"
SCRATCH, SCRATCH_MARKER = ".work", ".made-by-hf-lottery"


class RunLayout:
    """Paths of one run folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def run_config(self) -> Path:
        return inside(self.root, RUN_CONFIG)

    def check_writable(self, overwrite: bool = False) -> None:
        """Refuse a non-empty folder that holds no run (no run_config.json), unless `overwrite`."""
        if not overwrite and self.root.is_dir() and any(self.root.iterdir()) and not self.run_config.is_file():
            raise ValueError(
                f"{self.root} is not empty and holds no hf-lottery run (no {RUN_CONFIG}); choose a new or empty "
                "--output_dir, or pass --overwrite_output_dir to write into it anyway (its other files are kept)."
            )

    def seed_dir(self, seed: int) -> Path:
        return inside(self.root, f"seed_{seed}")

    def finetuned_dir(self, seed: int) -> Path:
        return inside(self.root, f"seed_{seed}", "finetuned")

    def ticket_dir(self, seed: int | str, method: str, kind: str) -> Path:
        return inside(self.root, "super" if seed == "super" else f"seed_{int(seed)}", "tickets", method, kind)

    def pruned_dir(self, seed: int) -> Path:
        return inside(self.root, f"seed_{seed}", "pruned")

    def retrained_dir(self, seed: int, name: str) -> Path:
        """``name`` is ``method/kind`` (or ``super/kind``)."""
        return inside(self.root, f"seed_{seed}", "retrained", name.replace("/", "_"))

    def retrained_results(self, seed: int) -> list[Path]:
        return sorted((self.seed_dir(seed) / "retrained").glob(f"*/{DONE}"))

    @property
    def patterns_dir(self) -> Path:
        return inside(self.root, "patterns")

    @property
    def report_dir(self) -> Path:
        return inside(self.root, "report")

    @property
    def plots_dir(self) -> Path:
        return inside(self.root, "report", "plots")

    def work_dir(self, *parts: str | int) -> Path:
        """A Trainer's scratch folder (no result) in ``.work``, which the run makes and marks; never a user's ``.work``."""
        scratch = inside(self.root, SCRATCH)
        if not (scratch / SCRATCH_MARKER).is_file():
            if scratch.exists():
                raise FileExistsError(
                    f"{scratch} was not made by hf-lottery (no {SCRATCH_MARKER} in it); a run keeps its scratch files "
                    "there and deletes them: move it out of the run folder."
                )
            scratch.mkdir(parents=True)
            (scratch / SCRATCH_MARKER).touch()
        return inside(scratch, *parts)

    def remove_work(self, folder: Path | None = None) -> None:
        """Delete `folder` of `work_dir` (default: all of ``.work``) if the run made ``.work``, else nothing."""
        scratch = self.root / SCRATCH
        folder = scratch if folder is None else Path(folder)
        if (scratch / SCRATCH_MARKER).is_file() and not scratch.is_symlink() and scratch in (folder, *folder.parents):
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def done(folder: Path, *keys: str) -> dict[str, Any] | None:
        """The unit's result (holding `keys`) if its done marker exists, else None (or of a JSON file: run_config)."""
        path = folder if folder.suffix == ".json" else folder / DONE
        try:
            found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except ValueError as err:  # not JSON, not UTF-8
            found = err
        if found is not None and (not isinstance(found, dict) or any(key not in found for key in keys)):
            raise ValueError(
                f"{path} is not as hf-lottery wrote it (a JSON object with {list(keys)}): cut short or edited by "
                "hand. Delete it and re-run the same command: its unit runs again (a run_config.json is written anew)."
            ) from (found if isinstance(found, ValueError) else None)
        return found

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
