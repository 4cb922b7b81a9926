"""Customers and the service points where their waste is collected.

The first slice (what the simulator and the planner need); the customers issue builds the
rest of the book on it.
"""

from customers.errors import CustomersError, InvalidValue, NotFound
from customers.models import CustomerKind, NewServicePoint, PositionSource, ServicePoint, Status
from customers.service import count_service_points, ensure_service_points, list_service_points

__all__ = [
    "CustomerKind",
    "CustomersError",
    "InvalidValue",
    "NewServicePoint",
    "NotFound",
    "PositionSource",
    "ServicePoint",
    "Status",
    "count_service_points",
    "ensure_service_points",
    "list_service_points",
]
