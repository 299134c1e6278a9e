"""Sub-commands of the `hf-lottery` CLI (see `hf_lottery.cli.COMMAND_MODULES`)."""
