"""The machinery of training and evaluation, no command's workflow (those are gaia_cli.tasks).

- `train`: the training loop (AMP, data parallel, checkpoint/resume); `data`: its seeded batches;
  `distributed`: the process group and collectives; `schedule`: phases and the learning rate;
  `checkpoints`: checkpoint names and the guard on a leftover one; `recipes`: named option sets;
  `runcontrol`: how a run is carried out (device, seed, workers, AMP, checkpoints, resume), its defaults once.
- `recalibration`: a supernet path made ready to measure (the static model, its batch norm re-estimated);
  `metrics`: COCO AP by pycocotools, MR^-2.
"""
