"""Redaction: known secret values (and their encoded forms) masked everywhere; shapes masked, words kept."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from pipeline import cli, log
from pipeline.redact import MASK, SECRETS, redact_text, redact_url, redact_value, register_secret
from pipeline.settings import load_settings

SECRET = "pa ss+w/rd&Zq9"  # a space, a plus, a slash, an ampersand: every encoding differs


def forms(secret: str, user: str | None = None) -> list[str]:
    out = [secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()]
    out.append(base64.urlsafe_b64encode(secret.encode()).decode())
    if user is not None:
        out.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return out


def test_a_registered_secret_is_masked_in_every_encoded_form() -> None:
    """The value, its percent-encodings, base64 and the basic-auth pair all become ***."""
    register_secret(SECRET, user="me@example.org")
    for form in forms(SECRET, "me@example.org"):
        text = f'401 {{"error": "invalid key {form}"}} (Basic {form})'
        masked = redact_text(text)
        assert form not in masked, masked
        assert MASK in masked
        assert "invalid key" in masked


def test_a_password_with_a_space_is_masked_whole() -> None:
    """Pattern rules stop at whitespace; the value rule takes the whole password."""
    register_secret(SECRET)
    masked = redact_text(f"username=me&password={quote_plus(SECRET)} and echoed: password={SECRET}")
    assert "pa" not in masked.replace("password", "")
    assert "rd&Zq9" not in masked
    assert "ss+w" not in masked


def test_ordinary_words_are_not_masked() -> None:
    """'the bearer token was refused' stays readable; credential shapes are still masked."""
    for plain in (
        "the bearer token was refused (401); check that the token is current",
        "password grant at https://kitsu.app/api/oauth/token failed; check username and password",
        "secret: rotate it in the vault",
    ):
        assert redact_text(plain) == plain
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl"
    shapes = {
        "Authorization: Bearer abc.def-123": "Authorization: Bearer ***",
        "headers {'Authorization': 'Basic dXNlcjpwYXNz'}": "headers {'Authorization': 'Basic ***'}",
        "GET /x?page=2&access_token=s3cr3t&q=1": "GET /x?page=2&access_token=***&q=1",
        "grant_type=password&username=me&password=hunter2": "grant_type=password&username=me&password=***",
        '{"client_secret": "abc123", "client_id": "id"}': '{"client_secret": "***", "client_id": "id"}',
        f"token was {jwt} then": "token was *** then",
        "postgresql://u:pw@db:5432/x": "postgresql://u:***@db:5432/x",
    }
    for text, expected in shapes.items():
        assert redact_text(text) == expected


def test_short_secrets_are_masked_as_whole_words_only() -> None:
    register_secret("ab1")
    assert redact_text("key ab1 refused; cab1e stays") == "key *** refused; cab1e stays"


def test_urls_headers_and_nested_values_use_the_registry() -> None:
    register_secret("tok-1234567")
    assert "tok-1234567" not in redact_url("https://api.test/x?key=tok-1234567")
    assert redact_value({"a": ["x tok-1234567"], "b": 3}) == {"a": ["x ***"], "b": 3}


def test_loading_settings_registers_every_secret(tmp_path: Path) -> None:
    """Passwords, tokens, client secrets and the database URL password are known once settings load."""
    config = tmp_path / "p.toml"
    config.write_text(
        '[database]\nurl = "postgresql://app:db-pass-77@h/db"\n'
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://k.test/api/edge"\n'
        'auth = { kind = "oauth_password", username = "me", password = "${KP}" }\n'
        '[sources.v]\nkind = "anilist_v1"\nbase_url = "https://v.test/api"\n'
        'auth = { kind = "oauth_client_credentials", client_id = "cid", client_secret = "v1-secret-9" }\n'
        '[sources.n]\nkind = "nekos"\nbase_url = "https://n.test"\nenabled = false\n'
        'auth = { kind = "bearer", token = "nekos-token-5" }\n'
    )
    load_settings(config, env={"KP": SECRET})
    for secret, user in (
        (SECRET, "me"),
        ("v1-secret-9", "cid"),
        ("nekos-token-5", None),
        ("db-pass-77", "app"),
    ):
        for form in forms(secret, user):
            assert form not in redact_text(f"echo: {form}!"), (secret, form)
    assert len(SECRETS) > 0


@pytest.mark.parametrize(
    "auth",
    [
        '"hunter2-typed-as-text"',
        '["hunter2-typed-as-text"]',
        '{ kind = "oauth_pasword", username = "me", password = "hunter2-typed-as-text" }',
        '{ kind = "bearer", token = "hunter2-typed-as-text", extra = 1 }',
        '{ kind = "bearer", tokn = "hunter2-typed-as-text" }',
    ],
)
def test_a_wrongly_typed_auth_value_is_not_printed(
    auth: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config error names the key and the fix but never the value of an auth table."""
    config = tmp_path / "p.toml"
    config.write_text(f'[sources.k]\nkind = "nekos"\nbase_url = "https://n.test"\nauth = {auth}\n')
    assert cli.main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "[sources.k].auth" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("json_logs", [True, False])
def test_both_log_renderers_mask_secrets_in_messages_and_exceptions(json_logs: bool) -> None:
    register_secret(SECRET)
    buffer = io.StringIO()
    log.configure("debug", json=json_logs, stream=buffer)
    try:
        raise RuntimeError(f"server said: invalid key {SECRET}")
    except RuntimeError:
        log.get_logger().exception("boom", detail={"echo": [quote_plus(SECRET)]}, error=f"x {SECRET}")
    text = buffer.getvalue()
    for form in forms(SECRET):
        assert form not in text
    assert "invalid key ***" in text
    if json_logs:
        assert json.loads(text)["event"] == "boom"
