"""Inference: the loaded model (PyTorch or ONNX), windows and timelines of recordings, events, export."""
