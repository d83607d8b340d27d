"""Vault ACL policies: parse (HCL and JSON) into rules, and evaluate them per request.

`_syntax` reads a document into a small syntax tree, `_rules` turns it into `Policy` and
`PathRule`s, `_acl` compiles policies into an `ACL` that picks the deciding rule for a path,
and `_parameters` checks a request's parameters against that rule's constraints.
"""

from tenantvault._policy._acl import ACL
from tenantvault._policy._parameters import ParameterValue
from tenantvault._policy._rules import CAPABILITIES, MAX_POLICY_BYTES, Capability, PathRule, Policy

__all__ = [
    "ACL",
    "CAPABILITIES",
    "MAX_POLICY_BYTES",
    "Capability",
    "ParameterValue",
    "PathRule",
    "Policy",
]
