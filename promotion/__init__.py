"""Moving a registered model between stages: gates, registry records and stack files.

``mlops promote`` and ``mlops rollback`` are thin wrappers over :mod:`promotion.flow`.
Everything here talks to AWS through boto3 clients handed in (:class:`promotion.aws.Clients`),
so the same code runs against AWS, a moto server, or moto in process.
"""
