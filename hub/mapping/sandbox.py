"""Jinja2's immutable sandbox with a budget: a mapping should not hang the worker or fill its memory.

Jinja's sandbox stops attribute escapes (``__class__``…) and caps ``range``; it bounds neither time nor
size. A mapping is written by an admin and runs in the worker's event loop, so one render gets
(``hub.mapping.budget``):

- a deadline, checked every few operations — attribute and item lookups, calls, operators, filters,
  concatenations, and every turn of a ``{% for %}`` loop;
- size checks made *before* the values that can blow up are built (repetition, ``~``, padding and format
  widths, ``replace``, ``join``, ``indent``), caps on the input of costly filters and string methods, and
  a size check on every other result;
- only plain text methods on strings (no ``encode``, ``expandtabs``, ``format_map``…), no ``lipsum``;
- no mutation of lists and dicts (``ImmutableSandboxedEnvironment``).
This is a budget, not an isolation boundary: templates are code, and only admin keys may write them
(a read key's preview renders stored mappings only).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.mapping.budget import (
    CHECK_EVERY,
    COSTLY_FILTERS,
    MAX_OUTPUT_CHARS,
    RENDER_SECONDS,
    BudgetExceeded,
    budget,
    check_binop,
    check_deadline,
    check_filter,
    check_size,
    check_str_method,
    tick,
    ticking,
    too_big,
)

__all__ = ["RENDER_SECONDS", "BoundedSandbox", "BudgetExceeded", "render_bounded"]
_DICT_ATTRIBUTES = frozenset(dir(dict))  # what getattr() finds on a plain dict (its methods…)


def _refuse_without_budget() -> None:
    """Outside a render (Jinja folding constants at compile time) nothing runs: there is no deadline."""
    if budget.deadline == float("inf"):
        raise nodes.Impossible()


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment markers
    def run(*args: Any, **kwargs: Any) -> Any:
        _refuse_without_budget()
        tick()
        plain = args[1:] if args and isinstance(args[0], Context | EvalContext | Environment) else args
        check_filter(name, plain, kwargs)
        result = check_size(func(*args, **kwargs))
        if name in COSTLY_FILTERS:  # one call may take long: look at the clock after each
            check_deadline()
        if isinstance(result, Iterator):  # lazy filters (select, unique, map…): every item counts
            return ticking(result)
        return result

    return run


def _bounded_test(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        _refuse_without_budget()
        tick()
        result = func(*args, **kwargs)
        check_deadline()  # "x in huge": one call may take long
        return result

    return run


def _encode(encoder: json.JSONEncoder, value: Any, limit: int) -> tuple[str, bool]:
    """``value`` as JSON, piece by piece, every piece counted; (text, complete), stopped past ``limit``."""
    out: list[str] = []
    size = 0
    for chunk in encoder.iterencode(value):
        tick()
        out.append(chunk)
        size += len(chunk)
        if size > limit:
            return "".join(out), False
    return "".join(out), True


def bounded_tojson(value: Any, indent: int | None = None) -> str:
    """Jinja's ``tojson`` (HTML-safe JSON), encoded within the budget."""
    text, complete = _encode(json.JSONEncoder(indent=indent, sort_keys=True, default=str), value, MAX_OUTPUT_CHARS)
    if not complete:
        raise too_big("tojson")
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def json_excerpt(value: Any, limit: int = 3000, indent: int = 2) -> str:
    """``value`` as indented JSON, cut to ``limit`` characters: stopped at the limit, so a huge or deeply
    nested payload costs what the excerpt costs."""
    limit = max(0, min(limit, 1_000_000))
    encoder = json.JSONEncoder(indent=max(0, min(indent, 8)), ensure_ascii=False, sort_keys=True, default=str)
    text, complete = _encode(encoder, value, limit)
    return text if complete else text[:limit] + "…"


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData):  # plain text
            return str(super()._output_child_to_const(node, frame, finalize))
        raise nodes.Impossible()  # no expression folded at compile time: it would run without a budget

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        # Jinja slices in plain Python; a slice is a copy, so it goes through the budgeted getitem too
        self.write("environment.getitem(")
        self.visit(node.node, frame)
        self.write(", slice(")
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):  # before generation: filters are collected from the tree
            if loop.recursive:  # loop(children) would walk iterables no budget sees
                self.fail("recursive loops are not available in mappings", loop.lineno)
            loop.iter = nodes.Filter(loop.iter, "hub_ticking", [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/"})

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, **options)  # no constant folding: it would run filters unbudgeted
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters["json_excerpt"] = _bounded_filter("json_excerpt", json_excerpt)
        self.filters["tojson"] = _bounded_filter("tojson", bounded_tojson)
        self.filters["hub_ticking"] = ticking
        self.filters.pop("pprint", None)  # json_excerpt shows a payload, bounded
        self.tests = {name: _bounded_test(f) for name, f in self.tests.items()}  # type: ignore[arg-type]
        self.globals.pop("lipsum", None)

    def concat(self, values: Iterable[Any]) -> str:  # also Jinja's own join (block set, macro bodies)
        tick()
        parts = [str(v) for v in values]
        if sum(map(len, parts)) > MAX_OUTPUT_CHARS:
            raise too_big("a concatenation")
        return str(check_size("".join(parts)))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        check_binop(operator, left, right)
        return check_size(super().call_binop(context, operator, left, right))

    # lookups read what exists: counted (the hottest hooks, so tick is inlined), not sized
    def getattr(self, obj: Any, attribute: str) -> Any:
        b = budget
        b.ops += 1
        if not b.ops % CHECK_EVERY:
            check_deadline()
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            # ``payload.issue``: a plain dict has no such attribute, so Jinja would fail getattr() (an
            # exception) and return the item; the item at once
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        b = budget
        b.ops += 1
        if not b.ops % CHECK_EVERY:
            check_deadline()
        if isinstance(argument, slice):  # a slice is a copy: a built value
            return check_size(super().getitem(obj, argument))
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        if __obj is dict and args:  # dict(pairs): one long call (colliding keys); keywords are fine
            raise SecurityError("dict() takes keyword arguments only in mappings")
        fn = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, str):
            check_str_method(owner, getattr(fn, "__name__", ""), args, kwargs)
            result = check_size(super().call(__context, __obj, *args, **kwargs))
            check_deadline()  # one text method on a long text may take a while
            return result
        return check_size(super().call(__context, __obj, *args, **kwargs))


def render_bounded(template: Any, context: dict[str, Any]) -> str:
    """Render with a fresh deadline, stopping once the output passes ``MAX_OUTPUT_CHARS``."""
    b = budget
    outer, built = b.deadline, b.built
    b.deadline, b.built = time.perf_counter() + RENDER_SECONDS, 0
    try:
        out: list[str] = []
        size = 0
        for chunk in template.root_render_func(template.new_context(context)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise BudgetExceeded(f"the mapping rendered over {MAX_OUTPUT_CHARS:,} characters")
            out.append(chunk)
        check_deadline()
        return "".join(out)
    finally:
        b.deadline, b.built = outer, built
