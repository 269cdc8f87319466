"""The data service on a real database (SQLite and PostgreSQL): each attempt the issue lists
fails as it should, the prosumer's view matches the access log, erasure leaves nothing
readable, the log cannot be rewritten, and ingest, export and retention work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from dataservice import crypto, ingest, queries, series
from dataservice.consent import Access, Level
from dataservice.crypto import CryptoError, MasterKey
from dataservice.queries import Refused
from dataservice.service import Caller, DataService, Kind, NotFound
from dataservice.store.tables import (
    data_access_log,
    data_days,
    data_prosumer_keys,
    data_release_members,
    data_releases,
)
from oadr.model import VenId
from tests.factories import make_data_report
from vtn.store.db import Store
from vtn.vens import Status, VenRecord

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
WEEK_END = datetime(2026, 3, 8, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=90)
AREA = "feeder-7"
OPERATOR = "operator:test"


@dataclass
class World:
    store: Store
    service: DataService
    master: MasterKey
    prosumers: list[str]


def household(n: int) -> list[float]:
    """Seven days of quarter-hours, a little different per household, none dominant."""
    rng = np.random.default_rng(n)
    return list(0.2 + 0.1 * rng.random(7 * 96))


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    store = Store(database_url)
    await store.create_all()
    master = MasterKey(crypto.new_key())
    service = DataService(store, master)
    await service.add_recipient("lab", "University lab", None, 3.0, OPERATOR, NOW)
    await service.add_recipient("agg", "Aggregator", None, 3.0, OPERATOR, NOW)
    prosumers = [f"p{n:02d}" for n in range(16)]
    for n, prosumer in enumerate(prosumers):
        await service.add_prosumer(prosumer, [AREA], None, OPERATOR, NOW)
        await service.add_meter_data(prosumer, MARCH, household(n), OPERATOR, NOW)
    try:
        yield World(store, service, master, prosumers)
    finally:
        await store.close()


async def grant_all(world: World, recipient: str, level: Level, access: Access) -> None:
    for prosumer in world.prosumers:
        await world.service.grant(
            prosumer, recipient, "research", level, access, EXPIRES, f"prosumer:{prosumer}", NOW
        )


async def rows(store: Store, query: sa.Select[tuple[object, ...]]) -> list[sa.Row[object]]:
    async with store.transaction() as tx:
        return list(await tx.connection.execute(query))


# --- the attempts that must fail ----------------------------------------------------------------


async def test_daily_consent_asking_quarter_hour_data_is_refused(world: World) -> None:
    grant = await world.service.grant(
        "p00", "lab", "research", Level.DAILY, Access.INDIVIDUAL, EXPIRES, "prosumer:p00", NOW
    )
    (pseudonym,) = await queries.pseudonyms_for(world.service, "lab", "research", NOW)

    daily = await queries.individual(
        world.service, "lab", pseudonym, "research", Level.DAILY, MARCH, WEEK_END, NOW
    )
    assert daily.energy_kwh[0] == pytest.approx(sum(household(0)[:96]))
    with pytest.raises(Refused) as refused:
        await queries.individual(
            world.service, "lab", pseudonym, "research", Level.QUARTER_HOUR, MARCH, WEEK_END, NOW
        )

    assert refused.value.reason == "level-too-fine"
    log = await world.service.accesses_of("p00")
    assert [(e.action, e.outcome, e.reason, e.level) for e in log if e.action == "read"] == [
        ("read", "allowed", "allowed", Level.DAILY),
        ("read", "refused", "level-too-fine", Level.QUARTER_HOUR),
    ]
    assert grant.level is Level.DAILY


async def test_an_aggregate_over_fourteen_households_is_refused(world: World) -> None:
    for prosumer in world.prosumers[:14]:
        await world.service.grant(
            prosumer,
            "agg",
            "research",
            Level.DAILY,
            Access.AGGREGATE,
            EXPIRES,
            f"prosumer:{prosumer}",
            NOW,
        )

    with pytest.raises(Refused, match="14 prosumers") as refused:
        await queries.aggregate(
            world.service, "agg", "research", Level.DAILY, AREA, MARCH, WEEK_END, NOW
        )

    assert refused.value.reason == "too-few-members"
    assert await rows(world.store, sa.select(data_releases)) == []


async def test_two_overlapping_aggregates_that_differ_by_one_household_are_refused(
    world: World,
) -> None:
    await grant_all(world, "agg", Level.DAILY, Access.AGGREGATE)
    first = await queries.aggregate(
        world.service, "agg", "research", Level.DAILY, AREA, MARCH, WEEK_END, NOW
    )
    assert first.members == 16
    expected = [sum(sum(household(n)[d * 96 : (d + 1) * 96]) for n in range(16)) for d in range(7)]
    assert first.energy_kwh == pytest.approx(expected)

    # One household revokes; the same area over an overlapping week now differs by one.
    (grant,) = await world.service.grants_of("p15")
    await world.service.revoke(grant.grant_id, "prosumer:p15", NOW, prosumer_id="p15")
    with pytest.raises(Refused, match="by 1 member") as refused:
        await queries.aggregate(
            world.service,
            "agg",
            "research",
            Level.DAILY,
            AREA,
            MARCH + timedelta(days=2),
            WEEK_END,
            NOW,
        )

    assert refused.value.reason == "differencing"
    # Another recipient has no earlier release to subtract: it may have the 15-member total.
    for prosumer in world.prosumers[:15]:
        await world.service.grant(
            prosumer,
            "lab",
            "research",
            Level.DAILY,
            Access.AGGREGATE,
            EXPIRES,
            f"prosumer:{prosumer}",
            NOW,
        )
    other = await queries.aggregate(
        world.service, "lab", "research", Level.DAILY, AREA, MARCH, WEEK_END, NOW
    )
    assert other.members == 15


async def test_a_revoked_grant_used_again_is_refused(world: World) -> None:
    grant = await world.service.grant(
        "p03",
        "lab",
        "research",
        Level.QUARTER_HOUR,
        Access.INDIVIDUAL,
        EXPIRES,
        "prosumer:p03",
        NOW,
    )
    (pseudonym,) = await queries.pseudonyms_for(world.service, "lab", "research", NOW)
    await queries.individual(
        world.service, "lab", pseudonym, "research", Level.QUARTER_HOUR, MARCH, WEEK_END, NOW
    )

    await world.service.revoke(grant.grant_id, "prosumer:p03", NOW, prosumer_id="p03")
    with pytest.raises(Refused) as refused:
        await queries.individual(
            world.service,
            "lab",
            pseudonym,
            "research",
            Level.QUARTER_HOUR,
            MARCH,
            WEEK_END,
            NOW + timedelta(seconds=1),
        )

    assert refused.value.reason == "revoked"
    assert await queries.pseudonyms_for(world.service, "lab", "research", NOW) == []


async def test_a_pseudonym_from_one_recipient_is_unknown_at_another(world: World) -> None:
    for recipient in ("lab", "agg"):
        await world.service.grant(
            "p05",
            recipient,
            "research",
            Level.DAILY,
            Access.INDIVIDUAL,
            EXPIRES,
            "prosumer:p05",
            NOW,
        )
    (at_lab,) = await queries.pseudonyms_for(world.service, "lab", "research", NOW)
    (at_agg,) = await queries.pseudonyms_for(world.service, "agg", "research", NOW)
    assert at_lab != at_agg

    with pytest.raises(NotFound, match="unknown pseudonym"):
        await queries.individual(
            world.service, "agg", at_lab, "research", Level.DAILY, MARCH, WEEK_END, NOW
        )
    mine = await queries.individual(
        world.service, "agg", at_agg, "research", Level.DAILY, MARCH, WEEK_END, NOW
    )
    assert mine.pseudonym == at_agg


async def test_an_erased_prosumers_rows_read_straight_from_the_database(world: World) -> None:
    """Erasure shreds the key: the rows are gone, and a copy taken before (a backup) stays
    unreadable even with the master key and everything left in the database."""
    backup = await rows(world.store, sa.select(data_days).where(data_days.c.prosumer_id == "p07"))
    wrapped = await rows(
        world.store,
        sa.select(data_prosumer_keys).where(data_prosumer_keys.c.prosumer_id == "p07"),
    )
    assert len(backup) == 7 and len(wrapped) == 1
    assert all(b"\x00\x00\x00" not in row.blob[12:40] for row in backup)  # ciphertext, not floats

    counts = await world.service.erase("p07", OPERATOR, NOW)

    assert counts["days"] == 7
    assert (
        await rows(world.store, sa.select(data_days).where(data_days.c.prosumer_id == "p07")) == []
    )
    assert (
        await rows(
            world.store,
            sa.select(data_prosumer_keys).where(data_prosumer_keys.c.prosumer_id == "p07"),
        )
        == []
    )
    keys = await rows(world.store, sa.select(data_prosumer_keys))
    for row in backup:
        for key_row in keys:  # no key left in the database opens the old blobs
            other_id = key_row.prosumer_id
            key = world.master.unwrap(key_row.wrapped_key, crypto.prosumer_key_label(other_id))
            with pytest.raises(CryptoError):
                crypto.open_sealed(key, row.blob, crypto.day_aad("p07", row.day))
    with pytest.raises(NotFound):
        await world.service.export("p07", Caller(Kind.PROSUMER, "p07"), NOW)


# --- the prosumer's view and the access log -------------------------------------------------------


async def test_the_prosumers_view_matches_the_access_log(world: World) -> None:
    await grant_all(world, "agg", Level.DAILY, Access.AGGREGATE)
    await world.service.grant(
        "p01", "lab", "research", Level.DAILY, Access.INDIVIDUAL, EXPIRES, "prosumer:p01", NOW
    )
    (pseudonym,) = await queries.pseudonyms_for(world.service, "lab", "research", NOW)
    await queries.individual(
        world.service, "lab", pseudonym, "research", Level.DAILY, MARCH, WEEK_END, NOW
    )
    with pytest.raises(Refused):
        await queries.individual(
            world.service, "lab", pseudonym, "research", Level.QUARTER_HOUR, MARCH, WEEK_END, NOW
        )
    release = await queries.aggregate(
        world.service, "agg", "research", Level.DAILY, AREA, MARCH, WEEK_END, NOW
    )

    view = await world.service.accesses_of("p01")

    members = sa.select(data_release_members.c.release_id).where(
        data_release_members.c.prosumer_id == "p01"
    )
    logged = await rows(
        world.store,
        sa.select(data_access_log)
        .where((data_access_log.c.prosumer_id == "p01") | data_access_log.c.release_id.in_(members))
        .order_by(data_access_log.c.id),
    )
    assert [(e.at, e.actor, e.action, e.level, e.purpose, e.outcome) for e in view] == [
        (r.at, r.actor, r.action, None if r.level is None else Level(r.level), r.purpose, r.outcome)
        for r in logged
    ]
    who_saw = [
        (e.actor, e.action, e.level, e.outcome) for e in view if e.action in ("read", "aggregate")
    ]
    assert who_saw == [
        ("recipient:lab", "read", Level.DAILY, "allowed"),
        ("recipient:lab", "read", Level.QUARTER_HOUR, "refused"),
        ("recipient:agg", "aggregate", Level.DAILY, "allowed"),
    ]
    assert [e.release_id for e in view if e.action == "aggregate"] == [release.release_id]
    assert "p02" not in {e.prosumer_id for e in view}


async def test_the_access_log_refuses_update_and_delete(world: World) -> None:
    await grant_all(world, "agg", Level.DAILY, Access.AGGREGATE)
    await queries.aggregate(
        world.service, "agg", "research", Level.DAILY, AREA, MARCH, WEEK_END, NOW
    )
    for statement in (
        sa.update(data_access_log).values(actor="nobody"),
        sa.delete(data_access_log),
        sa.delete(data_release_members),
        sa.update(data_releases).values(member_count=99),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with world.store.transaction() as tx:
                await tx.connection.execute(statement)
    assert len(await rows(world.store, sa.select(data_release_members))) == 16


# --- privacy budget -------------------------------------------------------------------------------


async def test_noisy_aggregates_spend_the_budget_until_it_runs_out(world: World) -> None:
    await grant_all(world, "agg", Level.MONTHLY, Access.AGGREGATE)
    feb, mar = datetime(2026, 2, 1, tzinfo=UTC), MARCH
    for n, prosumer in enumerate(world.prosumers):  # March is still open: February has to do
        await world.service.add_meter_data(prosumer, feb, household(n) * 4, OPERATOR, NOW)
    first = await queries.aggregate(
        world.service, "agg", "research", Level.MONTHLY, AREA, feb, mar, NOW, epsilon=2.0
    )
    assert first.epsilon == 2.0 and first.noise_scale_kwh == pytest.approx(20 * 24 * 28 / 2)
    exact = sum(sum(household(n)) * 4 for n in range(16))
    assert first.energy_kwh[0] != exact
    assert abs(first.energy_kwh[0] - exact) < 20 * first.noise_scale_kwh

    with pytest.raises(Refused, match="exhausted") as refused:
        await queries.aggregate(
            world.service, "agg", "research", Level.MONTHLY, AREA, feb, mar, NOW, epsilon=2.0
        )
    assert refused.value.reason == "budget-exhausted"
    again = await queries.aggregate(
        world.service, "agg", "research", Level.MONTHLY, AREA, feb, mar, NOW, epsilon=1.0
    )
    assert again.epsilon == 1.0


async def test_the_open_day_needs_near_real_time_consent(world: World) -> None:
    await world.service.grant(
        "p00",
        "lab",
        "research",
        Level.QUARTER_HOUR,
        Access.INDIVIDUAL,
        EXPIRES,
        "prosumer:p00",
        NOW,
    )
    (pseudonym,) = await queries.pseudonyms_for(world.service, "lab", "research", NOW)
    with pytest.raises(Refused) as refused:
        await queries.individual(
            world.service,
            "lab",
            pseudonym,
            "research",
            Level.QUARTER_HOUR,
            MARCH,
            NOW + timedelta(hours=12),
            NOW,
        )
    assert refused.value.reason == "not-closed"


# --- data rights and ingest -----------------------------------------------------------------------


async def test_export_gives_the_prosumer_everything_held(world: World) -> None:
    await world.service.grant(
        "p02", "lab", "research", Level.DAILY, Access.INDIVIDUAL, EXPIRES, "prosumer:p02", NOW
    )
    exported = await world.service.export("p02", Caller(Kind.PROSUMER, "p02"), NOW)

    assert len(exported.quarter_hours) == 7 * 96
    assert exported.quarter_hours[0] == (MARCH, pytest.approx(household(2)[0]))
    assert [g.recipient_id for g in exported.grants] == ["lab"]
    assert exported.accesses[-1].action == "export"


async def test_retention_purges_old_days(world: World) -> None:
    purged = await world.service.purge(timedelta(days=5), OPERATOR, NOW)
    # Days before March 5 go: March 1..4 of 16 prosumers.
    assert purged == 4 * 16
    left = await rows(world.store, sa.select(sa.func.min(data_days.c.day)))
    assert left[0][0] == datetime(2026, 3, 5).date()


async def test_ingest_from_the_vtns_readings(database_url: str) -> None:
    store = Store(database_url)
    await store.create_all()
    service = DataService(store, MasterKey(crypto.new_key()))
    try:
        async with store.transaction() as tx:
            for name in ("a", "b"):
                await tx.vens.save(
                    VenRecord(
                        ven_id=VenId(f"ven-{name}"),
                        fingerprint=name * 64,
                        ven_name=name,
                        status=Status.APPROVED,
                        created_at=NOW,
                    )
                )
            # 30 minute readings of 2 kW (0.5 kWh per quarter-hour), in two updates.
            for part in range(2):
                report = make_data_report(
                    f"rr-{part}", values=[2000.0] * 15, start=MARCH + timedelta(minutes=15 * part)
                )
                await tx.readings.add("ven-a", report, {}, NOW)
                await tx.readings.add("ven-b", report, {}, NOW)
        await service.add_prosumer("home-a", [AREA], "ven-a", OPERATOR, NOW)

        # Readings still settling (received less than a minute ago) wait for the next run.
        settling = await ingest.from_vtn(service, NOW, purge_source=True)
        later = NOW + timedelta(minutes=2)
        done = await ingest.from_vtn(service, later, purge_source=True, batch=7)
        again = await ingest.from_vtn(service, later, purge_source=True)

        assert settling.readings == settling.unmapped == 0

        assert (done.readings, done.unmapped, done.purged) == (30, 30, 30)
        assert again.readings == 0
        exported = await service.export("home-a", Caller(Kind.PROSUMER, "home-a"), NOW)
        assert exported.quarter_hours == [
            (MARCH, pytest.approx(0.5)),
            (MARCH + series.SLOT, pytest.approx(0.5)),
        ]
        async with store.transaction() as tx:
            left = await tx.readings.query(limit=100)
        assert {r.ven_id for r in left} == {"ven-b"}  # not a prosumer's: left alone
    finally:
        await store.close()


async def test_after_a_master_key_rotation_old_backups_open_nothing(world: World) -> None:
    """Erasure reaches backups: rotate the master key and destroy the old one, and the wrapped
    keys in a backup taken before the erasure are useless."""
    backup_keys = await rows(world.store, sa.select(data_prosumer_keys))
    backup_days = await rows(
        world.store, sa.select(data_days).where(data_days.c.prosumer_id == "p04")
    )
    await world.service.erase("p04", OPERATOR, NOW)

    new = MasterKey(crypto.new_key())
    counts = await world.service.rotate_master(new, OPERATOR, NOW)
    assert counts == {"prosumer_keys": 15, "recipient_keys": 2}

    # Nothing live needs the old master key any more, so it can be destroyed...
    live = await rows(world.store, sa.select(data_prosumer_keys))
    assert {r.master_key_id for r in live} == {new.key_id}
    for row in live:
        with pytest.raises(CryptoError):
            world.master.unwrap(row.wrapped_key, crypto.prosumer_key_label(row.prosumer_id))
    # ...and the backup's wrapped key opened only with the old one.
    (old_wrapped,) = [r for r in backup_keys if r.prosumer_id == "p04"]
    label = crypto.prosumer_key_label("p04")
    assert world.master.unwrap(old_wrapped.wrapped_key, label)
    with pytest.raises(CryptoError):
        new.unwrap(old_wrapped.wrapped_key, label)
    assert backup_days  # the blobs exist in the backup, but no key that exists opens them
    # The live data and pseudonyms survive the rotation.
    fresh = DataService(world.store, new)
    exported = await fresh.export("p05", Caller(Kind.PROSUMER, "p05"), NOW)
    assert len(exported.quarter_hours) == 7 * 96
