"""Listening live: a stream (stdin, a file at its own pace, a sound card) through the offline model and decisions,
events told as soon as they are decided."""
