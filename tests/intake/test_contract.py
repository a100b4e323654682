"""The published contract says what the server enforces: security schemes, constraints, and
documentation pages that work offline (issue 17)."""

from __future__ import annotations

import re

from tests.intake.conftest import Api


def test_security_schemes_are_declared(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ChannelKey"] == {**schemes["ChannelKey"], "type": "apiKey", "in": "header",
                                     "name": "X-API-Key"}  # fmt: skip
    assert schemes["OfficerToken"] == {**schemes["OfficerToken"], "type": "http",
                                       "scheme": "bearer"}  # fmt: skip
    paths = spec["paths"]
    assert paths["/api/v1/reports"]["post"]["security"] == [{"ChannelKey": []}]
    assert paths["/api/v1/reports/{report_id}"]["get"]["security"] == [{"ChannelKey": []}]
    assert "security" not in paths["/api/v1/reports/track/{token}"]["get"]
    assert paths["/api/v1/officer/queue"]["get"]["security"] == [{"OfficerToken": []}]


def test_the_schema_carries_the_rules_the_server_enforces(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    create = schemas["ReportCreate"]
    assert create["additionalProperties"] is False
    assert schemas["Reporter"]["additionalProperties"] is False
    for name in ("description",):
        assert "\\x00" in create["properties"][name]["pattern"]
    post = spec["paths"]["/api/v1/reports"]["post"]
    (key,) = [p for p in post["parameters"] if p["name"].lower() == "idempotency-key"]
    assert key["schema"]["pattern"] == "^[\\x21-\\x7e]{1,255}$"
    assert "429" in post["responses"]
    listing = spec["paths"]["/open311/v2/requests.{fmt}"]["get"]
    (status,) = [p for p in listing["parameters"] if p["name"] == "status"]
    assert "(open|closed)" in str(status["schema"])


def test_docs_and_redoc_work_offline(api: Api) -> None:
    """Every script, style sheet and icon the pages load is served by the API itself."""
    for page in ("/docs", "/redoc"):
        html = api.client.get(page).text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assets += re.findall(r"""url: ["']([^"']+)["']""", html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), (page, asset)  # no CDN, no other host
            got = api.client.get(asset)
            assert got.status_code == 200, (page, asset)
            assert got.content, (page, asset)
        assert "cdn" not in html.lower()
