"""Each option of a command is declared once, in the command's signature: a typed request
takes it by name (``bench.cli.options.RequestOptions``), or the command's body uses it.
No option is copied field by field into a request, none is left unused, and every field
of a request has its option (or is derived from options, or is named as set by none)."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest
import typer
from pydantic import BaseModel

from bench.cli.app import app
from bench.cli.options import RequestOptions


def _commands(group, prefix: str = ""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", inspect.unwrap(command.callback)


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _names_read(function) -> set[str]:
    """The names the function's body reads (its signature's defaults excluded)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    body = tree.body[0].body
    return {
        node.id
        for statement in body
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _requests(function) -> list[RequestOptions]:
    """The requests a command builds (module-level ``RequestOptions`` its body reads)."""
    found = (function.__globals__.get(name) for name in _names_read(function))
    return [value for value in found if isinstance(value, RequestOptions)]


def _nested(request: RequestOptions):
    yield request
    for source in request.derived.values():
        if isinstance(source, RequestOptions):
            yield from _nested(source)


def test_the_commands_are_all_here():
    assert len(COMMANDS) >= 12 and {"time", "profile", "pretrain", "data stats"} <= set(COMMANDS)


def _problems(function) -> list[str]:
    """Options neither read by a request nor used by the body; request fields without
    their option."""
    options = set(inspect.signature(function).parameters)
    requests = _requests(function)
    read = set().union(*(request.options() for request in requests))
    problems = [f"unused option {o}" for o in sorted(options - read - _names_read(function))]
    for request in requests:
        problems += [
            f"{request.model.__name__}.{o} has no option"
            for o in sorted(request.options() - options)
        ]
    return problems


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_reaches_a_request_or_the_body(name):
    assert not _problems(COMMANDS[name]), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_requests_name_only_their_own_fields(name):
    for outer in _requests(COMMANDS[name]):
        for request in _nested(outer):
            fields = set(request.model.model_fields)
            stale = (set(request.derived) | request.unset) - fields
            assert not stale, f"{request.model.__name__}: no fields {sorted(stale)}"


def test_the_commands_with_typed_requests_build_them_by_name():
    built = {name for name, function in COMMANDS.items() if _requests(function)}
    assert built >= {"flops", "time", "profile", "pretrain", "finetune", "ablate"}


class Toy(BaseModel):
    size: int = 1
    label: str = "x"
    total: int = 0
    note: str = "set by no option"


TOY = RequestOptions.of(Toy, total=lambda size, extra: size + extra, unset={"note"})


def toy_command(size: int = 3, label: str = "y", extra: int = 4, fmt: str = "table") -> Toy:
    request = TOY.build(locals())
    if fmt != "table":  # the body's own option
        raise ValueError(fmt)
    return request


def test_a_field_and_its_option_are_all_a_new_option_needs():
    """An option named like a field reaches it with no copying code; a derived field is a
    function of the options its parameters name."""
    assert toy_command() == Toy(size=3, label="y", total=7)
    assert TOY.options() == {"size", "label", "extra"}


def planted_unused(size: int = 3, label: str = "y", extra: int = 4, forgotten: int = 0) -> Toy:
    return TOY.build(locals())


def planted_missing(size: int = 3, extra: int = 4) -> Toy:
    return TOY.build(locals())


def test_the_check_finds_planted_problems():
    assert not _problems(toy_command)
    assert _problems(planted_unused) == ["unused option forgotten"]
    assert _problems(planted_missing) == ["Toy.label has no option"]


def test_a_field_without_its_option_is_caught():
    def command(size: int = 3, extra: int = 0) -> Toy:  # no --label
        return TOY.build(locals())

    with pytest.raises(TypeError, match="Toy: no option named label"):
        command()
