"""Sources: list a dataset (demo, Nonspeech7k, folder or CSV of user audio) as one table of clips."""
