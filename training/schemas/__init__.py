"""JSON schemas the kit's documents follow, vendored verbatim so checks need no network.

``model_card.schema.json``: SageMaker's model card JSON schema, the one AWS's docs print
under "Amazon SageMaker Model Cards > Model card JSON schema" (title SageMakerModelCardSchema,
version 0.1.0, JSON Schema draft-07). Copied unchanged from aws/sagemaker-python-sdk at
commit a24812666d258d9d19c9a82d0c9385ca0bd3ba01, file
sagemaker-core/src/sagemaker/core/tools/model_card/model_card_schema.json
(SHA-256 da893c9c875bbeaeb354b5e908d9f586953c9ff99790e1ef611e54507e5281bd).
Copyright Amazon.com, Inc. or its affiliates; licensed under the Apache License 2.0
(https://www.apache.org/licenses/LICENSE-2.0), as is that repository.
"""

from __future__ import annotations

from pathlib import Path

MODEL_CARD_SCHEMA = Path(__file__).resolve().parent / "model_card.schema.json"
