"""Devices: choosing CPU, CUDA or XLA, and multi-process training across devices and hosts."""
