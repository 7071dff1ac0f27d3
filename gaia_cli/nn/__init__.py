"""Elastic ops, the elastic ResNet + FPN, the detection supernet, static subnet extraction, BN recalibration.

Importing this package alone is cheap (no torch): it holds only the names that weight files share.
"""

HEAD_PREFIX = "montage_head."  # a pre-trained backbone file's dense classifier (Montage); nn.io's --init skips it
