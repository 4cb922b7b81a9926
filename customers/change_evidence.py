"""Evidence of a change request: files (a photo of the household registration, a contract
scan) attached while it is pending, kept with their SHA-256 and checked against it on
every read.

Every function takes an open connection (the caller owns the transaction); none reads a
clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import audit
from customers.change_models import RequestStatus, check_aware
from customers.errors import Conflict, CustomersError, InvalidValue, NotFound

log = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024


class EvidenceCorrupt(CustomersError):
    """A stored evidence file no longer matches its SHA-256: it changed after upload."""


@dataclass(frozen=True, slots=True)
class Evidence:
    id: int
    tenant_id: int
    change_request_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: int | None
    uploaded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EvidenceFile(Evidence):
    content: bytes = b""


_EVIDENCE_COLUMNS = (
    "id, tenant_id, change_request_id, filename, content_type, size_bytes, sha256,"
    " uploaded_by, uploaded_at"
)


async def add_evidence(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    request_id: int,
    filename: str,
    content_type: str,
    content: bytes,
) -> Evidence:
    """Attach a file to a pending request (what is decided on does not change after);
    the same file twice is kept once. Audited."""
    check_aware(at)
    if not 1 <= len(filename) <= 255 or any(ord(c) < 32 or c in "/\\" for c in filename):
        raise InvalidValue("filename: 1 to 255 characters, without / \\ or control characters")
    if not 1 <= len(content_type) <= 100:
        raise InvalidValue("content_type: 1 to 100 characters")
    if not 1 <= len(content) <= MAX_EVIDENCE_BYTES:
        raise InvalidValue(
            f"content: {len(content)} bytes, allowed 1 to {MAX_EVIDENCE_BYTES} (20 MiB)"
        )
    cursor = await conn.execute(
        "SELECT status, customer_id FROM change_requests WHERE tenant_id = %s AND id = %s"
        " FOR SHARE",
        (tenant_id, request_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"change request {request_id} not found")
    if row[0] != RequestStatus.PENDING:
        raise Conflict(
            f"status: evidence is added while a request is pending, this one is {row[0]}"
        )
    sha256 = hashlib.sha256(content).hexdigest()
    cursor = await conn.execute(
        "INSERT INTO change_request_evidence (tenant_id, change_request_id, filename,"
        " content_type, size_bytes, sha256, content, uploaded_by, uploaded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (change_request_id, sha256) DO NOTHING RETURNING {_EVIDENCE_COLUMNS}",
        (tenant_id, request_id, filename, content_type, len(content), sha256, content,
         actor.user_id, at),
    )  # fmt: skip
    inserted = await cursor.fetchone()
    if inserted is None:
        cursor = await conn.execute(
            f"SELECT {_EVIDENCE_COLUMNS} FROM change_request_evidence"
            " WHERE change_request_id = %s AND sha256 = %s",
            (request_id, sha256),
        )
        existing = await cursor.fetchone()
        assert existing is not None
        return Evidence(*existing)
    evidence = Evidence(*inserted)
    await audit.record(
        conn, tenant_id, actor, at,
        audit.Change("change_request", request_id, "add_evidence", None,
                     {"evidence_id": evidence.id, "filename": filename,
                      "content_type": content_type, "size_bytes": len(content),
                      "sha256": sha256},
                     row[1]),
    )  # fmt: skip
    return evidence


async def evidence_of(
    conn: AsyncConnection[Any], tenant_id: int, request_id: int
) -> list[Evidence]:
    """A request's files (without their content), in upload order."""
    cursor = await conn.execute(
        f"SELECT {_EVIDENCE_COLUMNS} FROM change_request_evidence"
        " WHERE tenant_id = %s AND change_request_id = %s ORDER BY id",
        (tenant_id, request_id),
    )
    return [Evidence(*row) for row in await cursor.fetchall()]


async def get_evidence(
    conn: AsyncConnection[Any], tenant_id: int, request_id: int, evidence_id: int
) -> EvidenceFile:
    """One file with its content, checked against its SHA-256 (EvidenceCorrupt if not)."""
    cursor = await conn.execute(
        f"SELECT {_EVIDENCE_COLUMNS}, content FROM change_request_evidence"
        " WHERE tenant_id = %s AND change_request_id = %s AND id = %s",
        (tenant_id, request_id, evidence_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"evidence {evidence_id} of change request {request_id} not found")
    names = [c.strip() for c in _EVIDENCE_COLUMNS.split(",")]
    evidence = EvidenceFile(**dict(zip(names, row[:-1], strict=True)), content=bytes(row[-1]))
    actual = hashlib.sha256(evidence.content).hexdigest()
    if actual != evidence.sha256 or len(evidence.content) != evidence.size_bytes:
        log.error("evidence %s of change request %s fails its SHA-256", evidence_id, request_id)
        raise EvidenceCorrupt(
            f"evidence {evidence_id}: content does not match its SHA-256 {evidence.sha256}"
            f" (now {actual}): it was changed after upload"
        )
    return evidence
