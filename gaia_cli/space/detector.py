"""The detector parts a space does not search, and their defaults (a space's `detector` overrides them).

They live apart from `arch` so that `flops`, which counts them, needs nothing of `arch` at run time: `arch`
checks a space's pruning record (`pruning`), which buckets paths by their FLOPs (`flops`).
"""

DEFAULT_DETECTOR = {
    "fpn_channels": 256,  # FPN output channels (torchvision and Detectron2 use 256)
    "box_head_dim": 1024,  # the two fully connected layers of the RoI box head
    "proposals": 1000,  # proposals per image the RoI head sees at test time (and in FLOPs counts)
    "proposals_train": 2000,  # proposals per image kept after NMS in training (torchvision's default)
    "roi_samples_per_image": 512,  # RoIs sampled per image for the box head's training loss
    "anchor_sizes": [32, 64, 128, 256, 512],  # RPN anchor size on P2..P6, each at aspect ratios 0.5, 1, 2
}  # a space may also set "anchor_ratios" (height / width of the anchors; default ANCHOR_RATIOS)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
