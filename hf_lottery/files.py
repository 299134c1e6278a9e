"""Names of the files and config entries hf-lottery writes: one table that every module reads, importing nothing.

A ticket folder holds `TICKET_CONFIG_NAME` + `TICKET_MASKS_NAME`. A model saved with a ticket attached records the
ticket in its ``config.json`` under `CONFIG_TICKET_KEY` and the pre-trained model it started from under
`CONFIG_BASE_MODEL_KEY`. A compact folder has ``model_type`` `COMPACT_MODEL_TYPE`, its pruning spec under
`COMPACT_SPEC_KEY` and its weights in `COMPACT_WEIGHTS_NAME`. Trainer checkpoints hold a copy of the ticket in
`CHECKPOINT_TICKET_DIR`.

Example:

```python
>>> from hf_lottery.files import TICKET_CONFIG_NAME, TICKET_MASKS_NAME
>>> TICKET_CONFIG_NAME, TICKET_MASKS_NAME
('ticket_config.json', 'ticket_masks.safetensors')

```
"""

TICKET_CONFIG_NAME = "ticket_config.json"
TICKET_MASKS_NAME = "ticket_masks.safetensors"
TICKET_FILES = (TICKET_CONFIG_NAME, TICKET_MASKS_NAME)

CONFIG_TICKET_KEY = "hf_lottery_ticket"
CONFIG_BASE_MODEL_KEY = "hf_lottery_base_model"

COMPACT_MODEL_TYPE = "hf_lottery_compact"
COMPACT_WEIGHTS_NAME = "hf_lottery_compact.safetensors"
COMPACT_SPEC_KEY = "hf_lottery_pruning"

CHECKPOINT_TICKET_DIR = "hf_lottery_ticket"
