"""The ``mlops`` command groups, one module each; ``mlops.cli`` puts them under one root."""
