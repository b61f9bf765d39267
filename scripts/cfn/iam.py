"""IAM policy evaluation, as AWS documents it, for the statements this project writes.

A request is an action on one resource (an ARN, or "*" for an action that supports no resource type) with the
condition keys the request really carries. It is allowed when an Allow statement matches and no Deny does.
Condition operators outside the supported set raise rather than guess: a policy that uses one must teach this
module first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict = field(default_factory=dict)  # condition key -> str, or list of str for multivalued keys


@dataclass(frozen=True)
class Decision:
    allowed: bool
    statement: str | None  # the Sid (or index) that decided, None for an implicit deny

    def __bool__(self):
        return self.allowed


def _listed(value):
    return value if isinstance(value, list) else [value]


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: * any run of characters, ? one character; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: the six parts of an ARN compared one by one, each with wildcards (the last may hold colons)."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(glob(p, a) for p, a in zip(pattern_parts, arn_parts))


def _action_matches(patterns, action):
    return any(glob(p, action, ignore_case=True) for p in _listed(patterns))


def _resource_matches(patterns, resource):
    # An action that supports no resource type is authorised on "*" only by a statement whose Resource is "*".
    if resource == "*":
        return any(p == "*" for p in _listed(patterns))
    return any(p == "*" or glob(p, resource) for p in _listed(patterns))


_COMPARE = {
    "StringEquals": lambda want, have: want == have,
    "StringNotEquals": lambda want, have: want == have,
    "StringEqualsIgnoreCase": lambda want, have: want.lower() == have.lower(),
    "StringLike": lambda want, have: glob(want, have),
    "StringNotLike": lambda want, have: glob(want, have),
    "ArnEquals": lambda want, have: want == have,
    "ArnNotEquals": lambda want, have: want == have,
    "ArnLike": arn_like,
    "ArnNotLike": arn_like,
    "Bool": lambda want, have: str(want).lower() == str(have).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _condition_holds(operator: str, key: str, wanted, context: dict) -> bool:
    wanted = [str(w) if not isinstance(w, bool) else str(w).lower() for w in _listed(wanted)]
    present = key in context
    if operator == "Null":
        return wanted[0].lower() == ("false" if present else "true")
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator not in _COMPARE:
        raise ValueError(f"condition operator {operator} is not modelled")
    compare, negated = _COMPARE[operator], operator in _NEGATED
    if not present:
        # AWS: a missing key fails a condition, but a negated one, an ...IfExists one and ForAllValues hold.
        return negated or if_exists or qualifier == "ForAllValues"
    values = _listed(context[key])
    matched = [any(compare(w, v) for w in wanted) for v in values]
    if qualifier == "ForAllValues":
        result = all(matched)
    else:  # ForAnyValue, or a single-valued key
        result = any(matched)
    return not result if negated else result


def _conditions_hold(conditions: dict, context: dict) -> bool:
    return all(_condition_holds(operator, key, wanted, context)
               for operator, keys in (conditions or {}).items() for key, wanted in keys.items())


def _statement_applies(statement: dict, request: Request) -> bool:
    if "Action" in statement and not _action_matches(statement["Action"], request.action):
        return False
    if "NotAction" in statement and _action_matches(statement["NotAction"], request.action):
        return False
    if "Resource" in statement and not _resource_matches(statement["Resource"], request.resource):
        return False
    if "NotResource" in statement and _resource_matches(statement["NotResource"], request.resource):
        return False
    return _conditions_hold(statement.get("Condition"), request.context)


def evaluate(statements: list[dict], request: Request) -> Decision:
    """One identity's policies (their statements together): an explicit Deny wins, then any Allow."""
    allowed_by = None
    for index, statement in enumerate(statements):
        if not _statement_applies(statement, request):
            continue
        name = statement.get("Sid", f"statement {index}")
        if statement["Effect"] == "Deny":
            return Decision(False, name)
        allowed_by = allowed_by or name
    return Decision(allowed_by is not None, allowed_by)


def statements_of(document: dict) -> list[dict]:
    return _listed(document["Statement"])


__all__ = ["Request", "Decision", "evaluate", "glob", "arn_like", "statements_of"]
