"""Training code for the SageMaker scikit-learn container and the laptop alike.

Modules here import only what the managed container ships (scikit-learn, pandas, numpy,
scipy, boto3) plus pandera for the data contract, so the entry points run unchanged there.
"""
