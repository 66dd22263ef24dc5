"""Checks the app manifests against Slack's app-manifest JSON Schema and the bot's own needs.

There is one manifest per transport: manifest.yml for Socket Mode (`postmortem-bot run`, no
public URL) and manifest.http.yml for HTTP (`postmortem-bot serve`). Every content test runs
on both, and they must be the same app apart from how Slack reaches the bot.

The schema comes from slackapi/manifest-schema, kept in the shared reference tree that CI
clones beside this repository (``<parent>/shared/slack-reference/manifest-schema``).  The top
schema only dispatches on ``_metadata.major_version`` and ``$ref``s the versioned schemas by
absolute raw.githubusercontent.com URLs; those are served from the local ``schemas/`` copies
through a ``referencing.Registry`` whose retriever refuses anything else, so nothing is
ever fetched from the network.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

REPO_ROOT = Path(__file__).resolve().parents[1]
SOCKET_MANIFEST = REPO_ROOT / "manifest.yml"
HTTP_MANIFEST = REPO_ROOT / "manifest.http.yml"
MANIFESTS = {"socket": SOCKET_MANIFEST, "http": HTTP_MANIFEST}
COMMANDS_SOURCE = REPO_ROOT / "bot" / "command_parser.py"
SCHEMA_DIR = REPO_ROOT.parent / "shared" / "slack-reference" / "manifest-schema"
TOP_SCHEMA_PATH = SCHEMA_DIR / "manifest.schema.json"
VERSIONED_DIR = SCHEMA_DIR / "schemas"
VALID_EXAMPLE = SCHEMA_DIR / "examples" / "manifest.valid.json"
INVALID_EXAMPLE = SCHEMA_DIR / "examples" / "manifest.invalid.json"

PUBLIC_URL = "https://postmortem-bot.example.com/slack/events"

# Bot event -> scopes Slack requires for it (Events API spec, x-scopes-required).
EVENT_SCOPES: dict[str, set[str]] = {
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "reaction_added": {"reactions:read"},
    "reaction_removed": {"reactions:read"},
    "app_home_opened": set(),
    "channel_archive": {"channels:read"},
    "channel_rename": {"channels:read"},
    "group_rename": {"groups:read"},
    "user_change": {"users:read"},
    "app_uninstalled": set(),
    "tokens_revoked": set(),
}

EXPECTED_BOT_SCOPES = {
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "channels:join",
    "pins:write",
    "reactions:read",
    "users:read",
    "users:read.email",  # tickets: the owner as assignee, matched by email (issue 13)
    "im:write",
    "im:history",
    "files:write",
}


# --------------------------------------------------------------------------- helpers


def _iter_refs(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _iter_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _iter_refs(value)


def _refuse_retrieval(uri: str):
    # Anything not registered from the local copies is an error, never a download.
    raise NoSuchResource(ref=uri)


@pytest.fixture(scope="module")
def top_schema() -> dict:
    if not TOP_SCHEMA_PATH.is_file():
        pytest.skip(
            f"Slack manifest schema not found at {TOP_SCHEMA_PATH}; clone the shared "
            "slack-reference tree beside the repository to run the manifest schema tests"
        )
    return json.loads(TOP_SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def remote_refs(top_schema) -> list[str]:
    """Absolute (non-fragment) $refs of the top schema: the versioned schemas."""
    refs = sorted({ref.split("#", 1)[0] for ref in _iter_refs(top_schema)} - {""})
    assert refs, "the top schema was expected to $ref the versioned schemas"
    return refs


@pytest.fixture(scope="module")
def registry(top_schema, remote_refs) -> Registry:
    resources = []
    top_id = top_schema.get("$id")
    if top_id:
        resources.append((top_id, Resource.from_contents(top_schema, default_specification=DRAFT7)))
    for uri in remote_refs:
        local = VERSIONED_DIR / Path(urlsplit(uri).path).name
        if not local.is_file():
            pytest.fail(f"schema {uri} is $ref'd by the top schema but {local} is missing")
        contents = json.loads(local.read_text(encoding="utf-8"))
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT7)))
    return Registry(retrieve=_refuse_retrieval).with_resources(resources)


@pytest.fixture(scope="module")
def validator(top_schema, registry) -> Draft7Validator:
    Draft7Validator.check_schema(top_schema)
    return Draft7Validator(top_schema, registry=registry)


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} must be a YAML mapping"
    return data


@pytest.fixture(scope="module", params=sorted(MANIFESTS))
def manifest(request) -> dict:
    """Each manifest in turn: every content test holds for both transports."""
    return _load(MANIFESTS[request.param])


@pytest.fixture(scope="module")
def socket_manifest() -> dict:
    return _load(SOCKET_MANIFEST)


@pytest.fixture(scope="module")
def http_manifest() -> dict:
    return _load(HTTP_MANIFEST)


def _leaf_errors(errors):
    """The innermost errors: the oneOf over schema versions hides the real ones in .context."""
    for error in errors:
        if error.context:
            yield from _leaf_errors(error.context)
        else:
            yield error


def _errors(validator: Draft7Validator, instance) -> list[str]:
    """Readable errors for ``instance`` ([] when valid).

    The top schema is a oneOf over "_metadata gate + $ref to a versioned schema", so its raw
    errors mix in the other branches' gate failures ("2 was expected", ...).  When exactly one
    branch's gate matches, re-validate against that branch's versioned schema alone.
    """
    if validator.is_valid(instance):
        return []
    errors = list(validator.iter_errors(instance))
    chosen = []
    for branch in validator.schema.get("oneOf", []):
        parts = branch.get("allOf", [])
        gates = [part for part in parts if "$ref" not in part]
        refs = [part["$ref"] for part in parts if "$ref" in part]
        if len(refs) == 1 and all(Draft7Validator(g).is_valid(instance) for g in gates):
            chosen.append(refs[0])
    if len(chosen) == 1:
        target = validator.evolve(schema={"$ref": chosen[0]})
        errors = list(target.iter_errors(instance))
    return sorted({f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in _leaf_errors(errors)})


# --------------------------------------------------------------------------- schema


def test_every_remote_ref_is_served_locally(remote_refs, registry):
    for uri in remote_refs:
        # Raises if the URI would need a retrieval (our retriever refuses all of them).
        assert registry.get_or_retrieve(uri).value.contents


def test_valid_example_passes(validator):
    # Sanity check that the refs resolve and the validator accepts a known-good manifest.
    assert _errors(validator, json.loads(VALID_EXAMPLE.read_text(encoding="utf-8"))) == []


def test_invalid_example_fails(validator):
    invalid = json.loads(INVALID_EXAMPLE.read_text(encoding="utf-8"))
    errors = list(validator.iter_errors(invalid))
    assert errors, "the invalid example must fail validation: the validator is not checking"
    # It fails because of settings.bad_param (additionalProperties: false in the v1 schema);
    # best_match() would pick an unrelated oneOf branch ("2 was expected"), so look at all leaves.
    assert any(
        e.validator == "additionalProperties" and list(e.absolute_path) == ["settings"] and "bad_param" in e.message
        for e in _leaf_errors(errors)
    ), _errors(validator, invalid)


def test_manifest_matches_schema(validator, manifest):
    assert _errors(validator, manifest) == []


def test_unknown_key_in_manifest_is_rejected(validator, manifest):
    broken = json.loads(json.dumps(manifest))
    broken["settings"]["socket_mode"] = True  # typo of socket_mode_enabled
    assert _errors(validator, broken) == [
        "settings: Additional properties are not allowed ('socket_mode' was unexpected)"
    ]


# --------------------------------------------------------------------------- content


def test_manifest_is_schema_v1(manifest):
    assert manifest["_metadata"]["major_version"] == 1


def test_display_information(manifest):
    info = manifest["display_information"]
    assert info["name"] == "postmortem-bot"
    assert info["description"].strip()
    # The schema spells this constraint as a non-standard "regex" keyword, which JSON
    # Schema validators ignore, so it is checked here.
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"])


def test_bot_user_and_app_home(manifest):
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "postmortem-bot", "always_online": True}
    assert features["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True,
    }


def test_slash_command_is_postmortem(manifest):
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/postmortem"]
    (command,) = commands
    assert command["should_escape"] is True, "mentions must arrive as user ids"
    assert command["usage_hint"].startswith("start <title> [--sev 1-4]")


def _parser_subcommands() -> set[str]:
    """The subcommand names `bot.command_parser.parse` dispatches on (its `name == "..."` tests).

    Read from the parser itself, so a subcommand added there without a usage hint fails
    test_usage_hint_lists_every_subcommand."""
    tree = ast.parse(COMMANDS_SOURCE.read_text(encoding="utf-8"))
    (parse,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "parse"]
    names = set()
    for node in ast.walk(parse):
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name)
            and node.left.id == "name"
            and all(isinstance(op, ast.Eq) for op in node.ops)
        ):
            names.update(c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return names


def test_the_subcommands_read_from_the_parser_are_the_ones_it_accepts():
    from bot.command_parser import Help, UsageError, parse

    def accepted(name: str) -> bool:
        try:
            command = parse(name)
        except UsageError:  # known, but wants arguments
            return True
        return not (isinstance(command, Help) and command.problem)

    names = _parser_subcommands()
    assert {"start", "note", "resolve", "help"} <= names
    assert all(accepted(name) for name in names), names
    assert not accepted("frobnicate"), "an unknown word must get help, or this check proves nothing"


def _usage_hint_parts(manifest: dict) -> list[str]:
    (command,) = manifest["features"]["slash_commands"]
    return [part.strip() for part in command["usage_hint"].split("|")]


def test_usage_hint_lists_every_subcommand(manifest):
    from bot.ui.help import SUBCOMMANDS

    parts = _usage_hint_parts(manifest)
    hinted = [part.split()[0] for part in parts]
    assert len(hinted) == len(set(hinted)), f"a subcommand is hinted twice: {hinted}"
    assert set(hinted) == _parser_subcommands(), "usage_hint and bot/command_parser.py disagree on the subcommands"
    # Written as `/postmortem help` writes it, so the two never teach different syntax.
    help_usages = {usage for usage, _what in SUBCOMMANDS}
    assert [p for p in parts if p not in help_usages] == [], f"not as /postmortem help shows it: {sorted(help_usages)}"


def test_usage_hint_fits_slacks_limit(manifest, registry, remote_refs):
    v1 = next(uri for uri in remote_refs if "1.0.0" in uri)
    schema = registry.get_or_retrieve(v1).value.contents
    limit = schema["definitions"]["app-manifests.v1.features.slash_commands"]["items"]["properties"]["usage_hint"][
        "maxLength"
    ]
    (command,) = manifest["features"]["slash_commands"]
    assert len(command["usage_hint"]) <= limit


def test_message_shortcut_add_to_timeline(manifest):
    shortcuts = manifest["features"]["shortcuts"]
    assert len(shortcuts) == 1
    (shortcut,) = shortcuts
    assert shortcut["type"] == "message"
    assert shortcut["callback_id"] == "add_to_timeline"
    assert shortcut["name"] == "Add to timeline"


def test_bot_scopes_are_exactly_what_the_bot_needs(manifest):
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes)), "duplicate scopes"
    assert set(scopes) == EXPECTED_BOT_SCOPES
    assert "chat:write.public" not in scopes  # the bot joins channels instead
    assert "pins:read" not in scopes


def test_required_events_are_subscribed(manifest):
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "reaction_added", "reaction_removed"} <= events


def test_every_bot_event_has_its_scope(manifest):
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    unknown = [e for e in events if e not in EVENT_SCOPES]
    assert not unknown, f"add the required scopes of {unknown} to EVENT_SCOPES"
    missing = {e: sorted(EVENT_SCOPES[e] - scopes) for e in events if EVENT_SCOPES[e] - scopes}
    assert not missing, f"bot events without their required scope: {missing}"


def test_settings(manifest):
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


# --------------------------------------------------------------------------- transports


def _request_urls(manifest: dict) -> list[str]:
    settings = manifest["settings"]
    urls = [c.get("url") for c in manifest["features"].get("slash_commands", [])]
    urls += [
        settings.get("event_subscriptions", {}).get("request_url"),
        settings.get("interactivity", {}).get("request_url"),
    ]
    return [u for u in urls if u is not None]


def _without_transport(manifest: dict) -> dict:
    """The manifest with what differs between Socket Mode and HTTP taken out."""
    app = json.loads(json.dumps(manifest))
    settings = app["settings"]
    settings.pop("socket_mode_enabled", None)
    settings.get("event_subscriptions", {}).pop("request_url", None)
    settings.get("interactivity", {}).pop("request_url", None)
    for command in app["features"].get("slash_commands", []):
        command.pop("url", None)
    return app


def test_socket_mode_manifest_needs_no_public_url(socket_manifest):
    # `postmortem-bot run` opens the connection itself; a URL here would only mislead.
    assert socket_manifest["settings"]["socket_mode_enabled"] is True
    assert _request_urls(socket_manifest) == []


def test_http_manifest_sends_everything_to_slack_events(http_manifest):
    # `postmortem-bot serve` answers commands, events and interactivity on one path.
    assert http_manifest["settings"]["socket_mode_enabled"] is False
    assert _request_urls(http_manifest) == [PUBLIC_URL] * 3


def test_http_manifest_placeholder_host_is_the_one_readme_says_to_replace():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    host = urlsplit(PUBLIC_URL).netloc
    assert "manifest.http.yml" in readme and host in readme


def test_both_manifests_are_the_same_app_apart_from_the_transport(socket_manifest, http_manifest):
    socket_app, http_app = _without_transport(socket_manifest), _without_transport(http_manifest)
    # Named one by one first so a mismatch says where (e.g. a scope added to one file only).
    assert set(http_app["oauth_config"]["scopes"]["bot"]) == set(socket_app["oauth_config"]["scopes"]["bot"])
    assert http_app["settings"]["event_subscriptions"] == socket_app["settings"]["event_subscriptions"]
    assert http_app["features"]["slash_commands"] == socket_app["features"]["slash_commands"]
    assert http_app["features"]["shortcuts"] == socket_app["features"]["shortcuts"]
    assert http_app["settings"]["interactivity"] == socket_app["settings"]["interactivity"]
    assert http_app == socket_app
