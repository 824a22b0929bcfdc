"""Data in: sources of labelled clips, audio decoding, ingest, folds, and webdataset shards written and read."""
