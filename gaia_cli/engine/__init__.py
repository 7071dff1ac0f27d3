"""Training and evaluation: the loop (AMP, data parallel, checkpoint/resume, schedules), COCO evaluation."""
