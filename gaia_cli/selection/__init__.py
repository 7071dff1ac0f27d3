"""Data selection: choosing upstream images for a target task and writing them as a `gaia/selection` (its reader,
finetune's --extra-data, is gaia_cli.data.extra)."""
