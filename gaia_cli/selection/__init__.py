"""Data selection: the `gaia/selection` format and its use as extra fine-tuning data."""
