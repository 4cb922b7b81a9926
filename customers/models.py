"""Values of the customer book: areas, customers, their service points and the dated terms
those points are billed on."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_ID = 2**63 - 1


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
    MANUAL = "manual"  # placed on the map in the office
    GPS = "gps"  # captured by a collector's phone at the door
    GEOCODED = "geocoded"  # from the address and the street network
    IMPORT = "import"
    SIMULATED = "simulated"


class Service(enum.StrEnum):
    COLLECTION = "collection"  # thu gom, vận chuyển rác sinh hoạt
    RECYCLING = "recycling"
    HAZARDOUS = "hazardous"
    EXTRA = "extra"  # ad-hoc collection
    CONTAINER_RENTAL = "container_rental"


class BillingPeriod(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class BillingMode(enum.StrEnum):
    PREPAID = "prepaid"
    POSTPAID = "postpaid"


Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]
ClassName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 .-]{6,20}$")]
TaxCode = Annotated[str, StringConstraints(pattern=r"^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StaffId = Annotated[int, Field(ge=1, le=MAX_ID)]


def default_class(kind: CustomerKind) -> str:
    """The tariff class a new service point of ``kind`` starts in (the office may refine it:
    ``restaurant``, ``small_retail``, ``office``...)."""
    return str(kind)


class NewServicePoint(BaseModel):
    """A customer with one service point, as the simulator and scenario files create them."""

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


class Area(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    code: str
    name: str
    ward: str
    district: str
    area_group: str
    collector_staff_id: int | None


class NewArea(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name: Name
    ward: str = Field("", max_length=100)
    district: str = Field("", max_length=100)
    area_group: ClassName = "urban"
    collector_staff_id: StaffId | None = None


class CustomerFields(BaseModel):
    """What the office edits on a customer directly (not billing inputs: those go through
    change requests, see ``PointTermsFields``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    kind: CustomerKind
    phones: list[Phone] = Field(default_factory=list, max_length=5)
    email: Email | None = None
    tax_code: TaxCode | None = None
    contact_name: Text200 = ""
    billing_address: str = Field("", max_length=500)
    billing_period: BillingPeriod = BillingPeriod.MONTHLY
    billing_mode: BillingMode = BillingMode.POSTPAID


class Customer(CustomerFields):
    id: int
    code: str
    status: Status
    status_from: dt.date | None
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime


class PointFields(BaseModel):
    """A service point's place and people: edited by the office directly, audited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field("", max_length=500)
    street: Text200 = ""
    ward: str = Field("", max_length=100)
    area_id: int | None = Field(None, ge=1, le=MAX_ID)
    category: str = Field("", max_length=100)
    collector_staff_id: StaffId | None = None
    cashier_staff_id: StaffId | None = None
    route_code: Code | None = None


class PointTermsFields(BaseModel):
    """What a service point is billed on; changes apply from a date (``customers.terms``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Status = Status.ACTIVE
    customer_class: ClassName = "household"
    so_khau: int | None = Field(None, ge=1, le=100)
    volume_m3_per_month: Decimal | None = Field(None, ge=0, le=10**8, decimal_places=3)
    weight_kg_per_month: Decimal | None = Field(None, ge=0, le=10**9, decimal_places=2)
    container_lifts_per_month: int | None = Field(None, ge=0, le=10_000)
    contract_price_vnd: int | None = Field(None, ge=0, le=10**12)
    services: list[Service] = Field(default_factory=lambda: [Service.COLLECTION], max_length=5)
    exemption_pct: int = Field(0, ge=0, le=100)
    exemption_reason: str = Field("", max_length=200)


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=10_000)
    source: PositionSource = PositionSource.MANUAL


class NewPoint(PointFields, PointTermsFields):
    """A service point as the office creates one."""

    code: Code
    position: Position
    valid_from: dt.date  # billed from this day


class NewCustomer(CustomerFields):
    """A customer and its first service point(s)."""

    code: Code
    points: list[NewPoint] = Field(min_length=1, max_length=100)


class ServicePoint(BaseModel):
    """A service point as it stands today, with its customer's name and kind."""

    model_config = ConfigDict(frozen=True)

    id: int
    tenant_id: int
    customer_id: int
    code: str
    name: str
    kind: CustomerKind
    address: str
    street: str = ""
    ward: str
    area_id: int | None = None
    lat: float
    lon: float
    position_accuracy_m: float | None = None
    position_source: PositionSource = PositionSource.MANUAL
    position_captured_at: dt.datetime | None = None
    position_needs_fix: bool = False
    customer_class: str = "household"
    category: str = ""
    so_khau: int | None
    volume_m3_per_day: float | None
    waste_kg_per_day: float
    volume_m3_per_month: Decimal | None = None
    weight_kg_per_month: Decimal | None = None
    container_lifts_per_month: int | None = None
    contract_price_vnd: int | None = None
    services: tuple[Service, ...] = (Service.COLLECTION,)
    collector_staff_id: int | None = None
    cashier_staff_id: int | None = None
    route_code: str | None = None
    book_order: int | None = None
    status: Status
    status_from: dt.date | None = None
    revision: int = 1


class Terms(BaseModel):
    """What held for a service point from ``valid_from`` (inclusive) to ``valid_to``
    (exclusive; None: until further notice)."""

    model_config = ConfigDict(frozen=True)

    id: int
    service_point_id: int
    valid_from: dt.date
    valid_to: dt.date | None
    status: Status
    customer_class: str
    area_group: str
    so_khau: int | None
    volume_m3_per_month: Decimal | None
    weight_kg_per_month: Decimal | None
    container_lifts_per_month: int | None
    contract_price_vnd: int | None
    services: tuple[Service, ...]
    exemption_pct: int
    exemption_reason: str
    change_request_id: int | None
