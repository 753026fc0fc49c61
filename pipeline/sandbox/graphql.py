"""A small GraphQL reader: enough of the language for the queries a sync connector sends.

Supports one operation (``query Name($v: Type = default) { … }`` or a bare ``{ … }``), aliases,
arguments with variables, lists, objects and enums, named fragments and inline fragments,
projecting a resolved ``dict`` onto a selection set so only the requested fields come back, and a
query's static complexity (``complexity``: 1 per selected field plus what it selects, a field's
items charged ``per_item`` times, as graphql-php's ``QueryComplexity`` rule counts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r'(?P<ws>[\s,]+|#[^\n]*)|(?P<spread>\.\.\.)|(?P<punct>[{}()\[\]:=!$@])|(?P<string>"(?:\\.|[^"\\])*")'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
)


class GraphQLError(Exception):
    """A request the server refuses; ``line``/``column`` locate it in the query text."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column

    def as_error(self, status: int = 400) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": status,
            "locations": [{"line": self.line, "column": self.column}],
        }


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class Enum:
    value: str


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Selection] = field(default_factory=list)
    line: int = 1
    column: int = 1

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class Spread:
    fragment: str | None  # a named fragment, or None for an inline fragment
    selections: list[Selection] = field(default_factory=list)


Selection = Field | Spread


@dataclass
class Operation:
    selections: list[Selection]
    defaults: dict[str, Any]
    fragments: dict[str, list[Selection]]


def parse(text: str) -> Operation:
    return _Parser(text).document()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                line, col = _where(text, pos)
                raise GraphQLError(f'Syntax Error: Unexpected character "{text[pos]}".', line, col)
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, match.group(), pos))
            pos = match.end()
        self.text = text
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "<EOF>", len(self.text))

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok, pos = self.peek()
        if (value is not None and tok != value) or (kind is not None and tok_kind != kind):
            line, col = _where(self.text, pos)
            raise GraphQLError(f"Syntax Error: Expected {value or kind}, found {tok}.", line, col)
        self.i += 1
        return tok

    def document(self) -> Operation:
        selections: list[Selection] | None = None
        defaults: dict[str, Any] = {}
        fragments: dict[str, list[Selection]] = {}
        while self.peek()[0] != "eof":
            tok = self.peek()[1]
            if tok == "fragment":
                self.take()
                name = self.take(kind="name")
                self.take("on")
                self.take(kind="name")
                fragments[name] = self.selection_set()
            elif tok in ("query", "{"):
                if tok == "query":
                    self.take()
                    if self.peek()[0] == "name":
                        self.take()
                    if self.peek()[1] == "(":
                        defaults = self.variable_defs()
                selections = self.selection_set()
            else:
                line, col = _where(self.text, self.peek()[2])
                raise GraphQLError(f'Syntax Error: Unexpected Name "{tok}".', line, col)
        if selections is None:
            raise GraphQLError("Syntax Error: the document holds no query operation.")
        return Operation(selections, defaults, fragments)

    def variable_defs(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        self.take("(")
        while self.peek()[1] != ")":
            self.take("$")
            name = self.take(kind="name")
            self.take(":")
            self.type_ref()
            if self.peek()[1] == "=":
                self.take()
                defaults[name] = self.value()
        self.take(")")
        return defaults

    def type_ref(self) -> None:
        if self.peek()[1] == "[":
            self.take("[")
            self.type_ref()
            self.take("]")
        else:
            self.take(kind="name")
        if self.peek()[1] == "!":
            self.take()

    def selection_set(self) -> list[Selection]:
        self.take("{")
        out: list[Selection] = []
        while self.peek()[1] != "}":
            out.append(self.selection())
        self.take("}")
        return out

    def selection(self) -> Selection:
        if self.peek()[0] == "spread":
            self.take()
            if self.peek()[1] == "on":
                self.take()
                self.take(kind="name")
                return Spread(None, self.selection_set())
            if self.peek()[1] == "{":
                return Spread(None, self.selection_set())
            return Spread(self.take(kind="name"))
        pos = self.peek()[2]
        name = self.take(kind="name")
        alias = None
        if self.peek()[1] == ":":
            self.take()
            alias, name = name, self.take(kind="name")
        line, col = _where(self.text, pos)
        found = Field(name=name, alias=alias, line=line, column=col)
        if self.peek()[1] == "(":
            self.take()
            while self.peek()[1] != ")":
                arg = self.take(kind="name")
                self.take(":")
                found.args[arg] = self.value()
            self.take(")")
        while self.peek()[1] == "@":  # directives are accepted and ignored
            self.take()
            self.take(kind="name")
            if self.peek()[1] == "(":
                while self.take() != ")":
                    pass
        if self.peek()[1] == "{":
            found.selections = self.selection_set()
        return found

    def value(self) -> Any:
        kind, tok, _ = self.peek()
        if tok == "$":
            self.take()
            return Variable(self.take(kind="name"))
        if tok == "[":
            self.take()
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        if tok == "{":
            self.take()
            obj = {}
            while self.peek()[1] != "}":
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        self.take()
        if kind == "string":
            return bytes(tok[1:-1], "utf-8").decode("unicode_escape") if "\\" in tok else tok[1:-1]
        if kind == "number":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(tok, Enum(tok))
        raise GraphQLError(f"Syntax Error: Unexpected {tok}.")


def _where(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def resolve_args(args: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Substitute variables and unwrap enums into plain Python values."""

    def one(value: Any) -> Any:
        if isinstance(value, Variable):
            return variables.get(value.name)
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, list):
            return [one(v) for v in value]
        if isinstance(value, dict):
            return {k: one(v) for k, v in value.items()}
        return value

    return {name: one(value) for name, value in args.items()}


def fields_of(selections: list[Selection], fragments: Mapping[str, list[Selection]]) -> list[Field]:
    """Flatten fragments into the plain list of fields they select."""
    out: list[Field] = []
    for sel in selections:
        if isinstance(sel, Field):
            out.append(sel)
        else:
            if sel.fragment is not None and sel.fragment not in fragments:
                raise GraphQLError(f'Unknown fragment "{sel.fragment}".')
            inner = fragments[sel.fragment] if sel.fragment is not None else sel.selections
            out.extend(fields_of(inner, fragments))
    return out


PerItem = Callable[[Field, Mapping[str, Any], tuple[str, ...]], int]


def complexity(
    selections: list[Selection],
    fragments: Mapping[str, list[Selection]],
    variables: Mapping[str, Any],
    per_item: PerItem,
    path: tuple[str, ...] = (),
) -> int:
    """Static cost of a selection: each field 1 + its children, the children (``pageInfo`` apart)
    counted ``per_item(field, its resolved args, the names of its ancestors)`` times."""
    total = 0
    for sel in fields_of(selections, fragments):
        args = resolve_args(sel.args, variables)
        inner = meta = 0
        for child in fields_of(sel.selections, fragments):
            cost = complexity([child], fragments, variables, per_item, (*path, sel.name))
            if child.name == "pageInfo":
                meta += cost
            else:
                inner += cost
        total += 1 + meta + (per_item(sel, args, path) * inner if inner else 0)
    return total


# (the field as selected, its resolved value, the parent's type name) -> the value to project:
# where a server applies a field's arguments (a nested connection's perPage, a language filter).
Shape = Callable[[Field, Any, str], Any]


def project(
    value: Any,
    selections: list[Selection],
    fragments: Mapping[str, list[Selection]],
    type_name: str,
    shape: Shape | None = None,
) -> Any:
    """Keep only the selected fields of a resolved value (recursively, through lists)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [project(v, selections, fragments, type_name, shape) for v in value]
    out = {}
    for sel in fields_of(selections, fragments):
        if sel.name == "__typename":
            out[sel.key] = type_name
            continue
        if sel.name not in value:
            raise GraphQLError(
                f'Cannot query field "{sel.name}" on type "{type_name}".', sel.line, sel.column
            )
        item = value[sel.name] if shape is None else shape(sel, value[sel.name], type_name)
        if sel.selections:
            if item is not None and not isinstance(item, dict | list):
                raise GraphQLError(f'Field "{sel.name}" must not have a selection.', sel.line, sel.column)
            out[sel.key] = project(item, sel.selections, fragments, _type_of(type_name, sel.name), shape)
        else:
            if isinstance(item, dict) or (isinstance(item, list) and item and isinstance(item[0], dict)):
                raise GraphQLError(
                    f'Field "{sel.name}" of type "{_type_of(type_name, sel.name)}" must have a selection '
                    f'of subfields. Did you mean "{sel.name} {{ ... }}"?',
                    sel.line,
                    sel.column,
                )
            out[sel.key] = item
    return out


def _type_of(parent: str, name: str) -> str:
    return {"title": "MediaTitle", "startDate": "FuzzyDate", "endDate": "FuzzyDate"}.get(
        name, f"{parent}.{name}"
    )
