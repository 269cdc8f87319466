"""Hooks: the documented command protocol (JSON on stdin, JSON on stdout, exit 3 unsupported),
run with real subprocesses; without a hook a case is told exactly what the VTN must do."""

from __future__ import annotations

import sys

import pytest

from conformance.hooks import CommandHook, HookFailed, HookUnsupported, NoHook

ACTION = {"action": "cancel_event", "event_id": "ev-1"}


def python(code: str) -> str:
    return f'{sys.executable} -c "{code}"'


async def test_the_command_gets_the_action_and_its_json_is_the_answer() -> None:
    echo = python("import json,sys; a=json.load(sys.stdin); print(json.dumps({'got': a}))")
    assert await CommandHook(echo).act(ACTION) == {"got": ACTION}


async def test_exit_3_means_unsupported_and_the_reason_is_kept() -> None:
    hook = CommandHook(python("import sys; print('no modify API', file=sys.stderr); sys.exit(3)"))
    with pytest.raises(HookUnsupported, match="no modify API"):
        await hook.act(ACTION)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import sys; print('refused', file=sys.stderr); sys.exit(1)", "exited 1: refused"),
        ("print('not json')", "printed no JSON object"),
        ("print('[1, 2]')", "printed no JSON object"),
    ],
    ids=["error-exit", "not-json", "not-an-object"],
)
async def test_a_failing_command_fails_the_action(code: str, message: str) -> None:
    with pytest.raises(HookFailed, match=message):
        await CommandHook(python(code)).act(ACTION)


async def test_without_a_hook_the_skip_says_what_the_vtn_must_do() -> None:
    with pytest.raises(HookUnsupported) as caught:
        await NoHook().act(ACTION)
    assert "cancel event (event_id=ev-1)" in str(caught.value)
    assert "--hook" in str(caught.value)
