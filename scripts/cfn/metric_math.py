"""CloudWatch metric math, the part the template's alarms use: numbers, metric ids, + - * /, comparisons and
IF(condition, then, else), evaluated on one period's values. A division by zero gives NaN, as CloudWatch leaves
such a point empty, and IF evaluates only the branch it takes."""
from __future__ import annotations

import ast
import math
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_COMPARE = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Eq: operator.eq}


def evaluate(expression: str, values: dict[str, float]) -> float:
    tree = ast.parse(expression.replace("IF(", "IF_("), mode="eval").body

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            divisor = walk(node.right)
            return walk(node.left) / divisor if divisor else math.nan
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return float(_COMPARE[type(node.ops[0])](walk(node.left), walk(node.comparators[0])))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "IF_" and len(node.args) == 3:
            condition, then, otherwise = node.args
            return walk(then) if walk(condition) else walk(otherwise)
        raise ValueError(f"metric math not modelled: {ast.dump(node)}")

    return walk(tree)


_OPERATORS = {"GreaterThanThreshold": operator.gt, "GreaterThanOrEqualToThreshold": operator.ge,
              "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}


def fires(alarm: dict, periods: list[dict[str, float]]) -> bool:
    """Whether a metric-math alarm (its resolved properties) goes into ALARM after these periods, oldest first:
    DatapointsToAlarm of its last EvaluationPeriods periods breach; an empty point (NaN) is missing data, treated
    as TreatMissingData says (this template's alarms: notBreaching)."""
    returned = next(m for m in alarm["Metrics"] if m.get("ReturnData", True) and "Expression" in m)
    compare = _OPERATORS[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    window = periods[-int(alarm["EvaluationPeriods"]):]
    breaching = 0
    for values in window:
        value = evaluate(returned["Expression"], values)
        if math.isnan(value):
            breaching += alarm.get("TreatMissingData") == "breaching"
        else:
            breaching += compare(value, threshold)
    return breaching >= int(alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]))
