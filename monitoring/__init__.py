"""Drift detection on endpoint data capture: the job SageMaker runs, and its pieces."""
