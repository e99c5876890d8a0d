"""The rules of OpenAPI import, one at a time on small documents: parameters, bodies, $refs,
schema dialects, names, descriptions, selection, security, servers and refused documents."""

from __future__ import annotations

from typing import Any

import pytest

from automation.http_tools import HttpToolSpec
from automation.http_tools.errors import OpenApiError
from automation.http_tools.openapi import import_openapi
from automation.http_tools.openapi_document import parse_document
from automation.tools.base import RiskLevel


def doc(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A minimal OpenAPI 3.1 document around `paths`."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": paths,
        **extra,
    }


def one(document: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
    result = import_openapi(document, name="t", **kwargs)
    assert len(result.tools) == 1, result.warnings
    HttpToolSpec.model_validate(result.tools[0])
    return result.tools[0], result.warnings


def params(tool: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in tool.get("parameters", [])}


# --- parameters, bodies and $refs ------------------------------------------------------------


def test_refs_to_parameters_bodies_and_path_item_parameters_are_merged() -> None:
    document = doc(
        {
            "/teams/{team}/members/{id}": {
                "parameters": [
                    {"$ref": "#/components/parameters/Team"},
                    {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                ],
                "put": {
                    "operationId": "updateMember",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        {"name": "verbose", "in": "query", "description": "Say more."},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                        {"name": "Accept", "in": "header", "schema": {"type": "string"}},
                    ],
                    "requestBody": {"$ref": "#/components/requestBodies/Member"},
                },
            }
        },
        components={
            "parameters": {
                "Team": {
                    "name": "team",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            "requestBodies": {
                "Member": {
                    "required": True,
                    "content": {
                        "application/json; charset=utf-8": {
                            "schema": {"$ref": "#/components/schemas/Member"}
                        }
                    },
                }
            },
            "schemas": {
                "Base": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "id": {"type": "integer", "readOnly": True},
                        "name": {"type": "string"},
                    },
                },
                "Member": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Base"},
                        {"properties": {"role": {"enum": ["admin", "member"]}}},
                    ]
                },
            },
        },
    )
    tool, warnings = one(document)

    assert warnings == []
    assert tool["name"] == "t_update_member" and tool["method"] == "PUT"
    assert tool["url"] == "https://api.example.com/v1/teams/{team}/members/{id}"
    assert [(p["name"], p["in"]) for p in tool["parameters"]] == [
        ("team", "path"),
        ("id", "path"),
        ("verbose", "query"),  # the operation's own definition wins
        ("X-Trace", "header"),
        ("name", "body"),
        ("role", "body"),
    ]
    by_name = params(tool)
    assert by_name["verbose"] == {
        "name": "verbose",
        "in": "query",
        "type": "string",
        "description": "Say more.",
    }
    assert by_name["name"]["required"] is True and by_name["id"]["type"] == "integer"
    assert by_name["role"]["enum"] == ["admin", "member"]


def test_openapi_31_and_30_schema_dialects_map_to_parameter_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "nick": {"type": ["string", "null"], "examples": ["ana"]},
            "kind": {"const": "person"},
            "age": {"type": "integer", "nullable": True, "enum": [1, 2, None]},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
            "extra": {"type": "object", "additionalProperties": True},
            "either": {"oneOf": [{"type": "null"}, {"type": "boolean"}]},
            "when": {"type": "string", "format": "date-time", "description": "**When** it was."},
        },
    }
    body = {"content": {"application/json": {"schema": schema}}, "required": True}
    tool, _ = one(doc({"/p": {"post": {"operationId": "p", "requestBody": body}}}))
    by_name = params(tool)

    assert {name: p["type"] for name, p in by_name.items()} == {
        "nick": "string",
        "kind": "string",
        "age": "integer",
        "score": "number",
        "tags": "array",
        "extra": "object",
        "either": "boolean",
        "when": "string",
    }
    assert by_name["nick"]["description"] == "e.g. ana"
    assert by_name["kind"]["enum"] == ["person"]
    assert by_name["age"]["enum"] == [1, 2]
    assert by_name["tags"]["description"] == "values: a, b"
    assert by_name["when"]["description"] == "When it was (ISO 8601 date-time)"


def test_recursive_schemas_terminate_and_become_objects_at_the_cycle() -> None:
    document = doc(
        {
            "/nodes": {
                "post": {
                    "operationId": "addNode",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}
                        },
                    },
                }
            }
        },
        components={
            "schemas": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "parent": {"$ref": "#/components/schemas/Node"},
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Node"},
                        },
                        "loop": {"allOf": [{"$ref": "#/components/schemas/Node"}]},
                    },
                }
            }
        },
    )
    tool, _ = one(document)

    assert {p["name"]: p["type"] for p in tool["parameters"]} == {
        "label": "string",
        "parent": "object",
        "children": "array",
        "loop": "object",
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"multipart/form-data": {"schema": {"type": "object"}}},
            "request body is multipart/form-data",
        ),
        ({"application/json": {"schema": {"type": "array", "items": {}}}}, "JSON body is an array"),
        ({"application/json": {"schema": {"type": "object"}}}, "JSON body declares no fields"),
    ],
)
def test_a_required_body_that_is_not_a_json_object_skips_the_operation(
    body: dict[str, Any], reason: str
) -> None:
    document = doc(
        {
            "/upload": {
                "post": {
                    "operationId": "upload",
                    "requestBody": {"required": True, "content": body},
                }
            },
            "/ok": {"get": {"operationId": "ok"}},
        }
    )
    result = import_openapi(document, name="t")

    assert [t["name"] for t in result.tools] == ["t_ok"]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("POST /upload (upload): skipped:")
    assert reason in result.warnings[0]


def test_cookies_clashing_names_and_unusable_names_are_left_out_when_optional() -> None:
    document = doc(
        {
            "/films/{language}": {
                "get": {
                    "operationId": "films",
                    "parameters": [
                        {
                            "name": "language",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "language", "in": "query", "schema": {"type": "string"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                        {"name": "filter[year]", "in": "query", "schema": {"type": "integer"}},
                        {"name": "where", "in": "query", "schema": {"type": "object"}},
                    ],
                }
            },
            "/secret": {
                "get": {
                    "operationId": "secret",
                    "parameters": [
                        {
                            "name": "session",
                            "in": "cookie",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                }
            },
        }
    )
    result = import_openapi(document, name="t")

    assert [t["name"] for t in result.tools] == ["t_films"]
    assert [p["name"] for p in result.tools[0]["parameters"]] == ["language"]
    assert result.warnings == [
        "GET /secret (secret): skipped: required parameter 'session' is a cookie, which tools "
        "cannot send",
        "GET /films/{language} (films): optional parameter 'language' left out: it has the same "
        "name as another parameter",
        "GET /films/{language} (films): optional parameter 'filter[year]' left out: it has a name "
        "tools cannot use (letters, digits, _ . - only)",
        "GET /films/{language} (films): optional parameter 'where' left out: it is an object in "
        "the query",
        "GET /films/{language} (films): optional parameter 'session' left out: it is a cookie, "
        "which tools cannot send",
    ]


def test_external_refs_skip_only_the_operations_using_them() -> None:
    document = doc(
        {
            "/a": {"get": {"operationId": "a", "parameters": [{"$ref": "common.yaml#/Limit"}]}},
            "/b": {"get": {"operationId": "b"}},
        }
    )
    result = import_openapi(document, name="t")

    assert [t["name"] for t in result.tools] == ["t_b"]
    assert "external $ref 'common.yaml#/Limit'" in result.warnings[0]
    assert "npx @redocly/cli bundle" in result.warnings[0]


# --- names, descriptions, selection ----------------------------------------------------------


def test_names_come_from_operation_ids_or_method_and_path_clamped_and_unique() -> None:
    long_id = "getTheVeryLongAndDescriptiveNameOfThisOperationThatGoesOnAndOnForever"
    document = doc(
        {
            "/users/{userId}/settings": {
                "parameters": [{"name": "userId", "in": "path", "required": True}],
                "get": {},
                "post": {"operationId": "HTTPUpdate-Settings.v2"},
            },
            "/x": {"get": {"operationId": long_id}, "put": {"operationId": long_id + "Again"}},
            "/y": {"get": {"operationId": "getUsersUserIdSettings"}},
            "/z": {"get": {"operationId": "报告"}},
        }
    )
    names = [t["name"] for t in import_openapi(document, name="My API!").tools]

    assert names[:3] == [
        "my_api_get_users_user_id_settings",
        "my_api_http_update_settings_v2",
        "my_api_get_the_very_long_and_descriptive_name_of_this_operation",
    ]
    assert names[3] == "my_api_get_the_very_long_and_descriptive_name_of_this_operatio_2"
    assert names[4] == "my_api_get_users_user_id_settings_2"
    assert names[5] == "my_api_get_z"
    assert all(len(name) <= 64 for name in names) and len(set(names)) == len(names)


def test_descriptions_are_short_plain_single_paragraphs() -> None:
    words = "Lists every widget in the account, including archived ones, sorted by creation date"
    document = doc(
        {
            "/w": {
                "get": {
                    "operationId": "widgets",
                    "description": f"{words}. See [the guide](https://x.example/guide) for **paging**.\n\n"
                    "## Details\nMore text that should never reach the prompt.",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "description": "A <b>search</b> expression " + "with many words " * 10,
                            "schema": {"type": "string"},
                        }
                    ],
                }
            },
            "/v": {
                "get": {"operationId": "v", "summary": "  Short\n  summary  ", "deprecated": True}
            },
        }
    )
    result = import_openapi(document, name="t", include_deprecated=True)
    widget, old = result.tools

    assert widget["description"] == f"{words}. See the guide for paging."
    assert len(widget["description"]) <= 160
    description = widget["parameters"][0]["description"]
    assert description.startswith("A search expression with many words") and len(description) <= 80
    assert description.endswith("…")
    assert old["description"] == "(deprecated) Short summary"


def test_deprecated_operations_are_skipped_unless_asked_for() -> None:
    document = doc(
        {
            "/old": {"get": {"operationId": "old", "deprecated": True}},
            "/new": {"get": {"operationId": "new"}},
        }
    )
    result = import_openapi(document, name="t")

    assert [t["name"] for t in result.tools] == ["t_new"]
    assert result.warnings == [
        "1 deprecated operations skipped (pass --include-deprecated to import them): GET /old (old)"
    ]


def test_only_selects_by_tag_operation_id_or_tool_name_and_risk_overrides_the_method() -> None:
    document = doc(
        {
            "/a": {"get": {"operationId": "a", "tags": ["alpha"]}},
            "/b": {"post": {"operationId": "b", "tags": ["beta"]}},
            "/c": {"delete": {"operationId": "c"}},
            "/d": {"get": {}},
        }
    )
    result = import_openapi(
        document,
        name="t",
        only=["alpha", "b", "t_get_d"],
        risks={"b": RiskLevel.PAYMENT, "t_get_d": RiskLevel.WRITE},
    )

    assert [(t["name"], t.get("risk")) for t in result.tools] == [
        ("t_a", None),
        ("t_b", "payment"),
        ("t_get_d", "write"),
    ]
    assert list(result.tools[1])[:5] == ["name", "description", "method", "url", "risk"]
    assert result.operations == 3
    with pytest.raises(OpenApiError) as caught:
        import_openapi(document, name="t", only=["gamma"], risks={"nope": RiskLevel.READ})
    assert caught.value.problems == [
        "--only 'gamma' matches no tag, operationId or tool name in the document; its tags "
        "are: alpha, beta",
        "--risk nope=…: no operationId or tool name 'nope' in the document",
    ]


# --- security and servers --------------------------------------------------------------------


def test_security_schemes_become_auth_by_secret_name_or_a_warning() -> None:
    schemes = {
        "bearer": {"type": "http", "scheme": "Bearer"},
        "key": {"type": "apiKey", "in": "header", "name": "X_Api_Key"},
        "query": {"type": "apiKey", "in": "query", "name": "api_key"},
        "oauth": {"type": "oauth2", "flows": {}},
        "basic": {"type": "http", "scheme": "basic"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
    }
    document = doc(
        {
            "/bearer": {"get": {"operationId": "viaBearer"}},
            "/key": {"get": {"operationId": "viaKey", "security": [{"cookie": []}, {"key": []}]}},
            "/query": {"get": {"operationId": "viaQuery", "security": [{"query": []}]}},
            "/open": {"get": {"operationId": "open", "security": []}},
            "/maybe": {"get": {"operationId": "maybe", "security": [{}, {"oauth": []}]}},
            "/oauth": {"get": {"operationId": "viaOauth", "security": [{"oauth": ["read"]}]}},
            "/basic": {"get": {"operationId": "viaBasic", "security": [{"basic": []}]}},
            "/both": {"get": {"operationId": "both", "security": [{"key": [], "query": []}]}},
        },
        security=[{"bearer": []}],
        components={"securitySchemes": schemes},
    )
    result = import_openapi(document, name="shop")
    auth = {t["name"]: t.get("auth") for t in result.tools}

    assert auth == {
        "shop_via_bearer": {"type": "bearer", "secret": "shop_token"},
        "shop_via_key": {"type": "header", "name": "X_Api_Key", "secret": "shop_api_key"},
        "shop_via_query": {"type": "query", "name": "api_key", "secret": "shop_api_key"},
        "shop_open": None,
        "shop_maybe": None,
        "shop_via_oauth": None,
        "shop_via_basic": None,
        "shop_both": None,
    }
    assert result.secrets == ["shop_api_key", "shop_token"]
    oauth, basic, both = result.warnings
    assert oauth.startswith("security scheme 'oauth' (oauth2) is needed by shop_via_oauth, ")
    assert "get an access token from the provider" in oauth
    assert "dadang secrets set shop_token" in oauth
    assert (
        "'Basic ' + base64 of user:password" in basic and "dadang secrets set shop_basic" in basic
    )
    assert both.startswith("security scheme 'key + query' (several credentials at once)")


def test_server_variables_relative_servers_and_base_url_override() -> None:
    variables = {"server": {"default": "http://localhost:5055"}}
    templated = doc({"/s": {"get": {"operationId": "s"}}})
    templated["servers"] = [{"url": "{server}/api/v1", "variables": variables}]
    assert one(templated)[0]["url"] == "http://localhost:5055/api/v1/s"
    assert one(templated, base_url="https://mine.example/api/")[0]["url"] == (
        "https://mine.example/api/s"
    )

    relative = doc({"/pets": {"get": {"operationId": "pets"}}})
    relative["servers"] = [{"url": "/api/v3"}]
    tool, _ = one(relative, document_url="http://127.0.0.1:9/specs/openapi.json")
    assert tool["url"] == "http://127.0.0.1:9/api/v3/pets"
    with pytest.raises(OpenApiError, match=r"relative .* pass --base-url"):
        import_openapi(relative, name="t")

    none = doc({"/pets": {"get": {"operationId": "pets"}}})
    del none["servers"]
    with pytest.raises(OpenApiError, match="names no servers; pass --base-url"):
        import_openapi(none, name="t")
    with pytest.raises(OpenApiError, match="not an http:// or https:// address"):
        import_openapi(none, name="t", base_url="ftp://files.example")


# --- documents that cannot be imported -------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        (
            {"swagger": "2.0", "paths": {"/a": {}}},
            [
                "d: this is a Swagger 2.0 document; only OpenAPI 3.0 and 3.1 are supported: convert "
                "it first (e.g. `npx swagger2openapi FILE -o openapi.yaml`, or "
                "https://converter.swagger.io)"
            ],
        ),
        (
            {"info": {}},
            [
                "d: no `openapi:` version field; is this an OpenAPI document?",
                "d: no operations: `paths:` is missing or empty",
            ],
        ),
        (
            {"openapi": "4.0.0", "paths": {"/a": {}}},
            ["d: OpenAPI 4.0.0 is not supported; 3.0.x and 3.1.x are"],
        ),
        ({"openapi": 3.0, "paths": {}}, ["d: no operations: `paths:` is missing or empty"]),
    ],
)
def test_documents_that_are_not_openapi_3_are_refused(
    document: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(OpenApiError) as caught:
        import_openapi(document, name="t", source="d")
    assert caught.value.problems == problems


def test_every_broken_ref_is_reported_at_once() -> None:
    document = doc(
        {
            "/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}},
            "/b": {
                "get": {
                    "parameters": [{"$ref": "#/components/parameters/Nope"}],
                    "x-sample": {"$ref": "#/not/checked"},  # extensions and examples are data
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"example": {"$ref": "#/no/ref"}}},
                        }
                    },
                }
            },
            "/c": {"post": {"requestBody": {"$ref": "#/components/requestBodies/Loop"}}},
        },
        components={
            "requestBodies": {
                "Loop": {"$ref": "#/components/requestBodies/Loop2"},
                "Loop2": {"$ref": "#/components/requestBodies/Loop"},
            }
        },
    )
    with pytest.raises(OpenApiError) as caught:
        import_openapi(document, name="t", source="api.yaml")

    assert caught.value.problems == [
        "api.yaml: $ref '#/components/parameters/Nope' at paths./a.get.parameters.0 (and 1 more "
        "places): nothing is defined at 'parameters'; fix the name or add the definition",
        "api.yaml: $ref '#/components/requestBodies/Loop' at paths./c.post.requestBody (and 1 "
        "more places): circular reference (#/components/requestBodies/Loop → "
        "#/components/requestBodies/Loop2 → #/components/requestBodies/Loop) that never reaches a "
        "definition",
        "api.yaml: $ref '#/components/requestBodies/Loop2' at components.requestBodies.Loop: "
        "circular reference (#/components/requestBodies/Loop2 → #/components/requestBodies/Loop → "
        "#/components/requestBodies/Loop2) that never reaches a definition",
    ]


def test_text_that_is_neither_json_nor_yaml_is_refused() -> None:
    with pytest.raises(OpenApiError, match=r"api\.txt: not JSON, and not valid YAML at line 2"):
        parse_document("openapi: 3.1.0\n  paths: [unclosed\n", source="api.txt")
    with pytest.raises(OpenApiError, match="but it is a list"):
        parse_document("[1, 2]", source="api.json")
