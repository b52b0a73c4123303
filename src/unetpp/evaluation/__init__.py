"""Scoring: IoU and Dice of predictions, the aggregate over runs, the paired comparisons, the test-set metric."""
