"""The sound-event detector: a frame-level head on the frozen body's columns, trained on synthesised scenes."""
