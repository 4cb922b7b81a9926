"""Connection pools, numbered migrations, the embedded server and the positions store."""

from storage.dead_letters import DeadLetter, count_dead_letters, write_dead_letters
from storage.device_events import (
    DeviceEventRow,
    count_device_events,
    events_since,
    write_device_events,
)
from storage.embedded import embedded_postgres
from storage.errors import EmbeddedPostgresError, MigrationError, StorageError
from storage.migrations import apply_migrations
from storage.pool import Pool, open_pool
from storage.positions import (
    LATEST_WITHIN,
    POSITION_COLUMNS,
    MaintenanceReport,
    PositionRow,
    PositionsBackend,
    StoredFix,
    choose_backend,
    count_positions,
    detect_backend,
    fixes_by_device,
    is_missing_partition,
    latest_positions,
    latest_positions_by_device,
    maintain,
    write_positions,
)
from storage.tracks import (
    TrackFix,
    TrackPoint,
    downsampled_track,
    downsampled_track_json,
    track_fixes,
)

__all__ = [
    "LATEST_WITHIN",
    "POSITION_COLUMNS",
    "DeadLetter",
    "DeviceEventRow",
    "EmbeddedPostgresError",
    "MaintenanceReport",
    "MigrationError",
    "Pool",
    "PositionRow",
    "PositionsBackend",
    "StorageError",
    "StoredFix",
    "TrackFix",
    "TrackPoint",
    "apply_migrations",
    "choose_backend",
    "count_dead_letters",
    "count_device_events",
    "count_positions",
    "detect_backend",
    "downsampled_track",
    "downsampled_track_json",
    "embedded_postgres",
    "events_since",
    "fixes_by_device",
    "is_missing_partition",
    "latest_positions",
    "latest_positions_by_device",
    "maintain",
    "open_pool",
    "track_fixes",
    "write_dead_letters",
    "write_device_events",
    "write_positions",
]
