"""Values of the customer book: customers and their service points."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class CustomerKind(enum.StrEnum):
    HOUSEHOLD = "household"  # hộ gia đình
    BUSINESS_HOUSEHOLD = "business_household"  # hộ kinh doanh
    BUSINESS = "business"  # doanh nghiệp
    AGENCY = "agency"  # cơ quan, đơn vị hành chính sự nghiệp


class Status(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class PositionSource(enum.StrEnum):
    MANUAL = "manual"
    GPS = "gps"
    GEOCODED = "geocoded"
    IMPORT = "import"
    SIMULATED = "simulated"


class NewServicePoint(BaseModel):
    """A customer with one service point, as the office or an import creates them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    kind: CustomerKind
    phone: str | None = Field(default=None, max_length=32)
    address: str = Field(default="", max_length=500)
    ward: str = Field(default="", max_length=100)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    position_accuracy_m: float | None = Field(default=None, ge=0)
    position_source: PositionSource = PositionSource.MANUAL
    so_khau: int | None = Field(default=None, ge=1, le=100)
    volume_m3_per_day: float | None = Field(default=None, ge=0)
    waste_kg_per_day: float = Field(default=0, ge=0)


class ServicePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    tenant_id: int
    customer_id: int
    code: str
    name: str
    kind: CustomerKind
    address: str
    ward: str
    lat: float
    lon: float
    so_khau: int | None
    volume_m3_per_day: float | None
    waste_kg_per_day: float
    status: Status
