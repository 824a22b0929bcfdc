"""Training: the loop for CPU, CUDA and XLA, the stage runner, augmentation, resume state and curves."""
