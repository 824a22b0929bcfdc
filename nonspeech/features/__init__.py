"""Features: front ends (log-mels as torch modules), their computation into zarr, normalisation statistics,
clip embeddings and background mixing in the power domain."""
