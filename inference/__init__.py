"""Serving: the SageMaker handler, model packaging, data capture and a local server."""
