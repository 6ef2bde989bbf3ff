"""SageMaker Pipelines definitions, built offline with the SageMaker v3 SDK."""
