"""`sealcheck keys list` and `sealcheck keys revoke KEY_ID`, on SQLite and PostgreSQL: the list
never shows a key, a revoked key is refused and its web sessions end, the others go on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import ApiKey, WebSession
from testkit.service import BACKENDS, auth, database_scalar, settings_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _web_sessions(settings, key_id: str) -> int:
    return database_scalar(settings, sa.select(sa.func.count()).select_from(WebSession)
                           .where(WebSession.api_key_id == key_id))


def _key_id(settings, key: str) -> str:
    from service.auth import hash_key

    return database_scalar(settings, sa.select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_keys_list_and_revoke_end_the_key_and_its_web_sessions(backend, request, tmp_path,
                                                               cli, monkeypatch):
    from service.auth import hash_key

    settings = settings_for(backend, tmp_path, request)
    monkeypatch.setenv("SEALCHECK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEALCHECK_DATABASE_URL", settings.database_url)
    keys = {}
    for tenant in ("acme", "globex"):
        code, out, err = cli("keys", "create", "--tenant", tenant)
        assert code == 0, err
        keys[tenant] = out.strip()
    ids = {tenant: _key_id(settings, key) for tenant, key in keys.items()}

    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/goldens", headers=auth(keys["acme"])).status_code == 200
        signed_in = client.post("/signin", data={"api_key": keys["acme"], "next": "/goldens"},
                                follow_redirects=False)
        assert signed_in.status_code == 303 and client.cookies
        assert _web_sessions(settings, ids["acme"]) == 1

        code, listing, err = cli("keys", "list")
        assert code == 0, err
        lines = listing.strip().splitlines()
        assert lines[0].split() == ["ID", "TENANT", "CREATED", "LAST", "USED"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert set(rows) == set(ids.values())
        assert rows[ids["acme"]][1] == "acme" and rows[ids["globex"]][1] == "globex"
        assert rows[ids["acme"]][3] != "-"  # used just now
        assert rows[ids["globex"]][3] == "-"  # never used
        for key in keys.values():
            assert key not in listing and hash_key(key) not in listing

        code, out, err = cli("keys", "revoke", ids["acme"])
        assert code == 0, err
        assert ids["acme"] in out and "1 web session" in out
        assert _web_sessions(settings, ids["acme"]) == 0
        assert client.get("/v1/goldens", headers=auth(keys["acme"])).status_code == 401
        page = client.get("/goldens", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        assert client.get("/v1/goldens", headers=auth(keys["globex"])).status_code == 200

    code, listing, _ = cli("keys", "list")
    assert ids["acme"] not in listing and ids["globex"] in listing
    for bad in (ids["acme"], "no-such-key", ""):
        code, out, err = cli("keys", "revoke", bad)
        assert code == 2 and out == "", (bad, out, err)
        assert len(err.strip().splitlines()) == 1 and "keys list" in err


def test_keys_without_a_command_is_one_line_exit_2(cli):
    code, out, err = cli("keys")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "keys list" in err
