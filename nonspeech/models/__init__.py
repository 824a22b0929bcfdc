"""Networks: the registry, the residual CNN, EfficientAT and embedding heads, checkpoints and output functions."""
