"""The first slice of the customer book: service points are created once per code, read back
as written, and stay inside their tenant."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

import customers
import fleet
from storage import Pool


def point(code: str, **changes: object) -> customers.NewServicePoint:
    values: dict[str, object] = {
        "code": code,
        "name": "Quán phở Hà",
        "kind": "business_household",
        "address": "Số 12 Ngõ 5 Tô Hiệu",
        "ward": "Quang Trung",
        "lat": 20.9713,
        "lon": 105.7788,
        "volume_m3_per_day": 0.12,
        "waste_kg_per_day": 14.5,
    }
    return customers.NewServicePoint(**(values | changes))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lat": 91.0}, "lat"),
        ({"so_khau": 0}, "so_khau"),
        ({"kind": "palace"}, "kind"),
        ({"name": ""}, "name"),
        ({"waste_kg_per_day": -1}, "waste_kg_per_day"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        point("KH1", **changes)


async def test_service_points_are_idempotent_and_tenant_scoped(pool: Pool) -> None:
    async with pool.connection() as conn:
        first = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "A")
        second = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "B")
        ids = await customers.ensure_service_points(conn, first.id, [point("KH1"), point("KH2")])
        again = await customers.ensure_service_points(
            conn, first.id, [point("KH1", name="Changed"), point("KH3")]
        )
        assert again["KH1"] == ids["KH1"]  # an existing code is left as it is
        other = await customers.ensure_service_points(conn, second.id, [point("KH1")])
        assert other["KH1"] != ids["KH1"]  # the same code in another company is another point
        listed = await customers.list_service_points(conn, first.id)
        assert [p.code for p in listed] == ["KH1", "KH2", "KH3"]
        assert listed[0].name == "Quán phở Hà"
        assert listed[0].volume_m3_per_day == pytest.approx(0.12)
        assert listed[0].kind is customers.CustomerKind.BUSINESS_HOUSEHOLD
        assert await customers.count_service_points(conn, second.id) == 1
