"""Evaluation: clip metrics, decision thresholds, the evaluate stage and timeline scoring."""
