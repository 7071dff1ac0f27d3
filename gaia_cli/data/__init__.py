"""COCO-format datasets: loading and validation, torch datasets, combining, batching, toy data, and the images
a `gaia/selection` chose served as extra fine-tuning data (`extra`)."""
