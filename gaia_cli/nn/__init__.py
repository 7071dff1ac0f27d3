"""Elastic ops, the elastic ResNet + FPN, the detection supernet, static subnet extraction, BN recalibration."""
