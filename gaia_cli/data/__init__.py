"""COCO-format datasets: loading and validation, torch datasets, combining, batching, toy data."""
