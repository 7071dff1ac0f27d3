"""`gaia export`: a gaia detector as a file that runs without gaia: ONNX (ONNX Runtime, TensorRT) or TorchScript.

- `model.py`: the model to export: a static path (a fine-tuned model, or a supernet's path extracted and its
  BN statistics re-estimated) as a plain torchvision `FasterRCNN`, its transform included;
- `write.py`: torch's exporters (`torch.onnx.export`, TorchScript-based; `torch.jit.script`) and gaia's
  metadata in the file (classes, arch, opset, input size, the source's sha256);
- `check.py`: the exported model's detections against PyTorch's, image by image, within stated tolerances;
- `run.py`: the command as a library call.

An exported file is read back and run by `gaia_cli.nn.exported` (ONNX Runtime or `torch.jit.load`), as a
detector that the check, `eval`, `predict` and `bench-latency` call like a torchvision model.
`onnx` and `onnxruntime` come with the optional extra `gaia-cli[export]`; only this package and
`gaia_cli.nn.exported` (when an ONNX file is read) import them.
"""
