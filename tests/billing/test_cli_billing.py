"""``sanitrack billing-run`` and ``invoices-issue`` against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest

import billing
from sanitrack import cli
from tests.billing.cases import HANOI_URBAN
from tests.billing.invoice_support import SELLER
from tests.billing.test_charge_runs import ACCOUNTANT, add_point, new_tenant, tariff


async def _company(url: str, symbol: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tenant = await new_tenant(conn)
        await billing.set_seller(conn, tenant, SELLER)
        now = dt.datetime.now(dt.UTC)
        await billing.create_tariff_version(
            conn, tenant, ACCOUNTANT, now, tariff("HN", HANOI_URBAN)
        )
        for n in range(3):
            await add_point(conn, tenant, f"HK{n}", so_khau=n + 1)
        await billing.create_series(conn, tenant, ACCOUNTANT, now, billing.NewSeries(symbol=symbol))
        cursor = await conn.execute("SELECT slug FROM tenants WHERE id = %s", (tenant,))
        row = await cursor.fetchone()
        await conn.commit()
        assert row is not None
        return str(row[0])


def test_the_command_line_bills_a_period_and_issues_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANITRACK_DATABASE_URL", database_url)
    # the series of this year: issuing stamps today's date
    symbol = f"C{dt.date.today().year % 100:02d}TAA"
    slug = asyncio.run(_company(database_url, symbol))
    args = ["billing-run", "--tenant", slug, "--period-start", "2026-06-01", "--series"]
    assert cli.main([*args, f"1{symbol}", "--issue", "--actor", "Chị Lan"]) == 0
    out = capsys.readouterr().out
    assert "100 %          3 / 3 invoices drafted" in out
    assert "drafts                        3" in out
    assert f"1{symbol}: numbers 1 to 3 (3 invoices)" in out
    # (1 + 2 + 3) persons × 6,000 VND, not subject to VAT
    assert "total                    36,000 VND" in out
    assert cli.main([*args, symbol]) == 0
    assert "drafts                        0" in capsys.readouterr().out
    assert cli.main([*args, "1C99TZZ"]) == 1
    assert "series '1C99TZZ' does not exist" in capsys.readouterr().err
    assert cli.main(["invoices-issue", "--tenant", slug]) == 0
    assert "issuing 0 drafts" in capsys.readouterr().out
