"""`/api/approvals`: the web console's way to see and answer approval requests.

Closed unless DADANG_API_TOKEN is set; the token is the owner's, so it sees every user's
requests. Decisions go through the same `ApprovalDesk.decide` as buttons (once, audited).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from memory.approvals import ApprovalRecord

if TYPE_CHECKING:
    from agent.runtime.service import Runtime

_DECISIONS = {"approve": (True, False), "always": (True, True), "reject": (False, False)}


def _public(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "tool": record.tool,
        "risk": record.risk,
        "target": record.target,
        "arguments": record.arguments,
        "reason": record.reason,
        "status": record.status,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "decided_at": record.decided_at.isoformat() if record.decided_at else None,
        "decided_via": record.decided_via,
    }


def approval_routes(runtime: Runtime) -> list[Route]:
    """GET /api/approvals[?status=pending|all] and POST /api/approvals/{id}."""

    def refused(request: Request) -> JSONResponse | None:
        token = runtime.settings.api_token
        if token is None:
            return JSONResponse(
                {"error": "the API is closed; set DADANG_API_TOKEN to open it"}, status_code=403
            )
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        return None

    async def listing(request: Request) -> JSONResponse:
        if (error := refused(request)) is not None:
            return error
        status = request.query_params.get("status", "pending")
        records = await runtime.approvals.store.listing(status=None if status == "all" else status)
        return JSONResponse({"approvals": [_public(r) for r in records]})

    async def decide(request: Request) -> JSONResponse:
        if (error := refused(request)) is not None:
            return error
        try:
            body = await request.json()
            approve, always = _DECISIONS[str(body["decision"])]
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"error": 'body must be {"decision": "approve" | "reject" | "always"}'},
                status_code=400,
            )
        approval_id = int(request.path_params["approval_id"])
        record, changed = await runtime.approvals.decide(
            approval_id, approve=approve, always=always, via="api", user_id=None
        )
        if record is None:
            return JSONResponse({"error": f"no approval request {approval_id}"}, status_code=404)
        if not changed:
            return JSONResponse(
                {"error": f"already {record.status}", "approval": _public(record)},
                status_code=409,
            )
        return JSONResponse({"approval": _public(record)})

    return [
        Route("/api/approvals", listing, methods=["GET"]),
        Route("/api/approvals/{approval_id:int}", decide, methods=["POST"]),
    ]
