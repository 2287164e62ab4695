"""Static checks of docker-compose.yml (no Docker engine needed).

* every build context and Dockerfile exists;
* every service's command (its own, or its image's CMD) runs real ``callcenter`` sub-commands;
* no literal secrets: *SECRET* / *PASSWORD* variables and credentials inside URLs are ``${...}``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml

from hotline.cli import build_parser  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^}]*)?\}$")
URL_CREDENTIALS = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
# `callcenter` where a command starts: at the start, after a shell separator, `exec` or `sh -c`.
CALLCENTER_WORDS = re.compile(r"(?:^|[;&|(]|\bexec\b|\bsh -c)\s*callcenter((?:\s+[^\s;&|)\"']+)*)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _subcommand_tree(parser: argparse.ArgumentParser) -> dict:
    """{name: subtree} for the parser's sub-commands, recursively ({} for a leaf)."""
    tree: dict = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                tree[name] = _subcommand_tree(sub)
    return tree


def _build(service: dict) -> dict | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return {"context": build, "dockerfile": "Dockerfile"}
    return {"context": build.get("context", "."), "dockerfile": build.get("dockerfile", "Dockerfile")}


def _dockerfile_cmd(service: dict) -> str | None:
    build = _build(service)
    if build is None:
        return None
    text = (ROOT / build["context"] / build["dockerfile"]).read_text()
    cmd = None
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip().upper().startswith("CMD "):
            cmd = line.strip()[4:].strip()
    if cmd is None:
        return None
    if cmd.startswith("["):
        return " ".join(json.loads(cmd))
    return cmd


def _command_text(service: dict) -> str | None:
    cmd = service.get("command")
    if cmd is None:
        return _dockerfile_cmd(service)
    if isinstance(cmd, list):
        return " ".join(str(c) for c in cmd)
    return str(cmd)


def _healthcheck_text(service: dict) -> str | None:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(t) for t in test[1:])  # after CMD / CMD-SHELL
    return test


def _callcenter_invocations(text: str) -> list[list[str]]:
    """The argument lists after each ``callcenter`` word in a (possibly ``sh -c``) command."""
    return [m.group(1).split() for m in CALLCENTER_WORDS.finditer(text)]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def test_compose_parses_with_the_expected_services(compose: dict) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "asterisk", "engine", "web", "migrate", "load-demo"):
        assert name in services, name
    assert services["engine"]["network_mode"] == "service:asterisk"
    assert "ports" not in services["engine"], "a service in another's namespace cannot publish ports"


def test_build_paths_exist(compose: dict) -> None:
    builds = {name: _build(svc) for name, svc in compose["services"].items() if _build(svc)}
    assert builds, "no service is built from this repository"
    for name, build in builds.items():
        context = ROOT / build["context"]
        assert context.is_dir(), f"{name}: build context {build['context']} does not exist"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {build['dockerfile']} does not exist"


def test_dockerfiles_copy_only_existing_paths(compose: dict) -> None:
    for name, svc in compose["services"].items():
        build = _build(svc)
        if build is None:
            continue
        context = ROOT / build["context"]
        for line in (context / build["dockerfile"]).read_text().splitlines():
            parts = line.split()
            if parts and parts[0].upper() == "COPY" and not any(p.startswith("--from") for p in parts):
                for src in parts[1:-1]:
                    if not src.startswith("--"):
                        assert (context / src).exists(), f"{name}: COPY {src} is not in the build context"


def test_commands_are_real_callcenter_subcommands(compose: dict) -> None:
    tree = _subcommand_tree(build_parser())
    checked = 0
    for name, svc in compose["services"].items():
        text = " ; ".join(t for t in (_command_text(svc), _healthcheck_text(svc)) if t)
        for args in _callcenter_invocations(text):
            words = [a for a in args if not a.startswith("-")]
            assert words, f"{name}: `callcenter` without a sub-command"
            node = tree
            for word in words:
                if not node:
                    break  # a leaf: what follows are the sub-command's values
                assert word in node, f"{name}: `callcenter ... {word}` is not a sub-command"
                node = node[word]
            assert not node, f"{name}: `callcenter {' '.join(words)}` needs a further sub-command"
            try:
                build_parser().parse_args(args)  # the options must be known too
            except SystemExit:
                pytest.fail(f"{name}: `callcenter {' '.join(args)}` does not parse")
            checked += 1
    # engine, web, migrate, load-demo, the asterisk image's CMD and its healthcheck.
    assert checked >= 6


def test_serve_roles(compose: dict) -> None:
    services = compose["services"]
    assert "--no-web" in _command_text(services["engine"])
    assert "--no-engine" in _command_text(services["web"])
    assert "asterisk render" in _command_text(services["asterisk"])


def test_no_literal_secrets(compose: dict) -> None:
    envs = {"x-callcenter-env": {str(k): str(v) for k, v in (compose.get("x-callcenter-env") or {}).items()}}
    envs.update({name: _environment(svc) for name, svc in compose["services"].items()})
    for name, env in envs.items():
        for key, value in env.items():
            if "SECRET" in key.upper() or "PASSWORD" in key.upper():
                assert REFERENCE.match(value), f"{name}: {key} must be a ${{...}} reference, not a literal"
            for m in URL_CREDENTIALS.finditer(value):
                assert REFERENCE.match(m.group("password")), f"{name}: {key} holds a literal password"


def test_secrets_are_in_every_app_service(compose: dict) -> None:
    for name, svc in compose["services"].items():
        if _build(svc) is None:
            continue
        env = _environment(svc)
        for key in ("CALLCENTER_AMI_SECRET", "CALLCENTER_SESSION_SECRET", "CALLCENTER_DATABASE_URL"):
            assert key in env, f"{name}: {key} is not passed"
