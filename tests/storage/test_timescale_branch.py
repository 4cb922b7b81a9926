"""The TimescaleDB branch against stand-ins with TimescaleDB's documented signatures.

TimescaleDB cannot be installed here. These stubs (a scratch database, the
function names, parameter names and catalog views of its 2.x API) record each
call, so the test proves the branch's SQL runs as written, binds its
intervals, and replaces a policy only when its setting changed.
"""

from __future__ import annotations

import psycopg

from sanitrack.settings import PositionsSettings
from storage.positions import _apply_timescale_policies
from tests.conftest import DatabaseFactory

STANDINS = """
CREATE TABLE positions (device_id bigint, time timestamptz);
CREATE SCHEMA timescaledb_information;
CREATE TABLE timescaledb_information.hypertables (hypertable_name name, compression_enabled bool);
INSERT INTO timescaledb_information.hypertables VALUES ('positions', true);
CREATE TABLE timescaledb_information.jobs (proc_name name, hypertable_name name, config jsonb);
CREATE TABLE calls (n serial, call text);
CREATE FUNCTION set_chunk_time_interval(hypertable regclass, chunk_time_interval interval,
    dimension_name name DEFAULT NULL) RETURNS void LANGUAGE sql AS
  $$ INSERT INTO calls (call) VALUES ('set_chunk_time_interval ' || chunk_time_interval) $$;
CREATE FUNCTION add_compression_policy(hypertable regclass, compress_after interval DEFAULT NULL,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS $$
  INSERT INTO timescaledb_information.jobs VALUES ('policy_compression', 'positions',
      jsonb_build_object('compress_after', compress_after::text));
  INSERT INTO calls (call) VALUES ('add_compression_policy ' || compress_after);
  SELECT 1000 $$;
CREATE FUNCTION remove_compression_policy(hypertable regclass, if_exists boolean DEFAULT false)
  RETURNS boolean LANGUAGE sql AS $$
  DELETE FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression';
  INSERT INTO calls (call) VALUES ('remove_compression_policy');
  SELECT true $$;
CREATE FUNCTION add_retention_policy(relation regclass, drop_after interval,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS $$
  INSERT INTO timescaledb_information.jobs VALUES ('policy_retention', 'positions',
      jsonb_build_object('drop_after', drop_after::text));
  INSERT INTO calls (call) VALUES ('add_retention_policy ' || drop_after);
  SELECT 1001 $$;
CREATE FUNCTION remove_retention_policy(relation regclass, if_exists boolean DEFAULT false)
  RETURNS void LANGUAGE sql AS $$
  DELETE FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention';
  INSERT INTO calls (call) VALUES ('remove_retention_policy') $$;
"""


async def calls(conn: psycopg.AsyncConnection[tuple[str]]) -> list[str]:
    cursor = await conn.execute("SELECT call FROM calls ORDER BY n")
    found = [row[0] for row in await cursor.fetchall()]
    await conn.execute("TRUNCATE calls")
    return found


async def test_policies_are_set_once_and_replaced_only_when_a_setting_changes(
    databases: DatabaseFactory,
) -> None:
    url = databases.create()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(STANDINS.encode())
        settings = PositionsSettings(retention_days=90, compress_after_hours=24)
        await _apply_timescale_policies(conn, settings)
        assert await calls(conn) == [
            "set_chunk_time_interval 1 day",
            "remove_compression_policy",
            "add_compression_policy 1 day",
            "remove_retention_policy",
            "add_retention_policy 90 days",
        ]
        await _apply_timescale_policies(conn, settings)  # the hourly upkeep: nothing churns
        assert await calls(conn) == ["set_chunk_time_interval 1 day"]
        await _apply_timescale_policies(
            conn, PositionsSettings(retention_days=90, compress_after_hours=48)
        )
        assert await calls(conn) == [
            "set_chunk_time_interval 1 day",
            "remove_compression_policy",
            "add_compression_policy 2 days",
        ]
