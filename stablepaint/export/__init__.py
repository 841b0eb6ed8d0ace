"""Export of the GAN colorizers to other runtimes: `stablepaint.export.onnx` (ONNX, checked with ONNX Runtime)."""
