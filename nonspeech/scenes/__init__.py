"""Synthesised scenes with strong labels, and their frame embeddings."""
