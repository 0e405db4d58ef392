"""Jinja2's immutable sandbox with budgets: a mapping cannot hang the worker or fill its memory.

Jinja's sandbox stops attribute escapes (``__class__``…) and caps ``range``; it does not bound time or
size. A mapping comes from an admin (or from a read key, through the preview), and it runs in the
worker's event loop, so one render gets:

- a deadline (``RENDER_SECONDS``), checked at every attribute, item, call, operator and concatenation;
- a size cap (``MAX_VALUE_CHARS``) on every string or sequence made by an operator, a concatenation
  (``~``), a filter, a call or a lookup, checked *before* the obvious bombs (``'a' * 10**9``,
  ``replace`` with a long text, ``center(10**9)``, ``x ** 10**9``) are built;
- the output of a template capped at ``MAX_OUTPUT_CHARS``;
- no mutation of lists and dicts (``ImmutableSandboxedEnvironment``).
A template that goes over any of them fails with :class:`BudgetExceeded`, a mapping failure.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Sized
from typing import Any

from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

RENDER_SECONDS = 0.5
MAX_VALUE_CHARS = 16_000_000  # above the default body limit: a payload's own values always fit
MAX_OUTPUT_CHARS = 16_000_000
MAX_EXPONENT = 256
MAX_INT_BITS = 100_000  # about 30,000 digits: big integers cost time quadratically
CHECK_EVERY = 32  # operations between two looks at the clock

_HUGE_WIDTH = re.compile(r"\d{8,}")  # a format width or precision of ten million or more


class BudgetExceeded(SecurityError):
    """A template went over its time or size budget."""


class _Budget(threading.local):
    deadline = float("inf")
    ops = 0


_budget = _Budget()


def _check_deadline() -> None:
    if time.perf_counter() > _budget.deadline:
        raise BudgetExceeded(f"the mapping took longer than {RENDER_SECONDS} s to render")


def _tick() -> None:
    """Count one operation; every CHECK_EVERY, check the deadline."""
    b = _budget
    b.ops += 1
    if not b.ops % CHECK_EVERY:
        _check_deadline()


def _check_size(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_VALUE_CHARS:
        raise BudgetExceeded(f"the mapping built a value of over {MAX_VALUE_CHARS:,} items or characters")
    return value


def _size(value: Any) -> int:
    return len(value) if isinstance(value, Sized) and not isinstance(value, range) else len(str(value))


def _check_widths(args: Iterable[Any]) -> None:
    """``center(10**9)``, ``ljust``, ``zfill``, ``indent``…: refuse a width that would build too much."""
    for a in args:
        if isinstance(a, int) and not isinstance(a, bool) and a > MAX_VALUE_CHARS:
            raise BudgetExceeded(f"a width or count over {MAX_VALUE_CHARS:,}")


def _check_format(template: Any) -> None:
    if isinstance(template, str) and _HUGE_WIDTH.search(template):
        raise BudgetExceeded("a format width or precision over a million")


def _precheck_filter(name: str, args: tuple[Any, ...]) -> None:
    """Refuse the filters whose result size is known before they run."""
    _check_widths(args[1:])
    if name == "format" and args:
        _check_format(args[0])
    if name == "replace" and len(args) >= 3:
        text, old, new = (str(a) for a in args[:3])
        grows = max(len(new) - len(old), 0) * (text.count(old) if old else len(text) + 1)
        if len(text) + grows > MAX_VALUE_CHARS:
            raise BudgetExceeded(f"replace would build over {MAX_VALUE_CHARS:,} characters")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment markers
    def run(*args: Any, **kwargs: Any) -> Any:
        _tick()
        plain = args[1:] if args and isinstance(args[0], Context | EvalContext | Environment) else args
        _precheck_filter(name, plain)
        return _check_size(func(*args, **kwargs))

    return run


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def concat(self, values: Iterable[Any]) -> str:  # also Jinja's own join (block set, macro bodies)
        _tick()
        parts = [str(v) for v in values]
        if sum(map(len, parts)) > MAX_VALUE_CHARS:
            raise BudgetExceeded(f"the mapping built a value of over {MAX_VALUE_CHARS:,} characters")
        return "".join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(times, int) and not isinstance(seq, int | float) and _size(seq) * times > MAX_VALUE_CHARS:
                    raise BudgetExceeded(f"the mapping built a value of over {MAX_VALUE_CHARS:,} characters")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise BudgetExceeded(f"exponent over {MAX_EXPONENT}")
        if isinstance(left, int) and isinstance(right, int):
            bits = {"*": left.bit_length() + right.bit_length(), "**": left.bit_length() * abs(right)}
            if bits.get(operator, 0) > MAX_INT_BITS:
                raise BudgetExceeded(f"an integer of over {MAX_INT_BITS:,} bits")
        if operator == "%":
            _check_format(left)
        return _check_size(super().call_binop(context, operator, left, right))

    # lookups read what exists: counted (the hottest hooks, so _tick is inlined), not sized
    def getattr(self, obj: Any, attribute: str) -> Any:
        b = _budget
        b.ops += 1
        if not b.ops % CHECK_EVERY:
            _check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        b = _budget
        b.ops += 1
        if not b.ops % CHECK_EVERY:
            _check_deadline()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_widths(args)
        _check_widths(kwargs.values())
        _check_format(getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None))  # "{:>99999999}".format()
        return _check_size(super().call(__context, __obj, *args, **kwargs))


def render_bounded(template: Any, context: dict[str, Any]) -> str:
    """Render with a fresh deadline, stopping once the output passes ``MAX_OUTPUT_CHARS``."""
    b = _budget
    outer = b.deadline
    b.deadline = time.perf_counter() + RENDER_SECONDS
    try:
        out: list[str] = []
        size = 0
        for chunk in template.root_render_func(template.new_context(context)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise BudgetExceeded(f"the mapping rendered over {MAX_OUTPUT_CHARS:,} characters")
            out.append(chunk)
        _check_deadline()
        return "".join(out)
    finally:
        b.deadline = outer
