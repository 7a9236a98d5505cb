"""The reference page's content, read from the OpenAPI document: the operations by tag, each
with its parameters, body and answers, and every schema's fields."""

from __future__ import annotations

from dataclasses import dataclass, field

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Row:
    name: str
    type: str
    required: bool
    notes: str = ""


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Row] = field(default_factory=list)
    body: str | None = None
    answers: list[tuple[str, str, str | None]] = field(default_factory=list)
    scope: str | None = None


def _ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def type_of(schema: dict) -> str:
    """A short name for a schema's type: ``string``, ``integer``, ``list of Ref``, ``Issue``…"""
    if name := _ref_name(schema):
        return name
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(type_of(option) for option in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    if fmt := schema.get("format"):
        return f"{kind} ({fmt})"
    return kind


def notes_of(schema: dict) -> str:
    parts = []
    for key, text in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "from {}"),
        ("maximum", "up to {}"),
        ("maxItems", "at most {} items"),
        ("pattern", "matching {}"),
        ("default", "default {}"),
    ):
        if key in schema and schema[key] is not None:
            parts.append(text.format(schema[key]))
    if schema.get("description"):
        parts.insert(0, schema["description"])
    return "; ".join(parts)


def fields_of(schema: dict) -> list[Row]:
    required = set(schema.get("required", ()))
    return [
        Row(name, type_of(sub), name in required, notes_of(sub))
        for name, sub in schema.get("properties", {}).items()
    ]


def operations(document: dict) -> dict[str, list[Operation]]:
    """The operations by tag, in the document's order."""
    by_tag: dict[str, list[Operation]] = {}
    for path, methods in document.get("paths", {}).items():
        for method in _METHODS:
            op = methods.get(method)
            if op is None:
                continue
            entry = Operation(
                method=method.upper(),
                path=path,
                summary=op.get("summary", ""),
                description=op.get("description", ""),
                anchor=op.get("operationId", f"{method}-{path}"),
            )
            for parameter in op.get("parameters", []):
                schema = parameter.get("schema", {})
                entry.parameters.append(
                    Row(
                        f"{parameter['name']} ({parameter['in']})",
                        type_of(schema),
                        parameter.get("required", False),
                        parameter.get("description") or notes_of(schema),
                    )
                )
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                entry.body = type_of(content["application/json"].get("schema", {}))
            for status, answer in sorted(op.get("responses", {}).items()):
                shown = next(iter(answer.get("content", {}).values()), {}).get("schema", {})
                entry.answers.append((status, answer.get("description", ""), _ref_name(shown)))
            by_tag.setdefault((op.get("tags") or ["Other"])[0], []).append(entry)
    return by_tag


def schemas(document: dict) -> dict[str, list[Row]]:
    return {
        name: fields_of(schema)
        for name, schema in sorted(document.get("components", {}).get("schemas", {}).items())
        if schema.get("type") == "object"
    }
