"""What recipients ask: one prosumer's series under a pseudonym, or an anonymised aggregate.

Each answer is decided in one transaction: consent (`dataservice.consent`), then for aggregates
the 15/15 and differencing rules (`dataservice.anonymity`) and the privacy budget
(`dataservice.privacy`); the release and its access-log row are written in the same
transaction, so an answer the recipient got is always on record. A refusal is logged, committed,
then raised.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from dataservice import anonymity, consent, crypto, noise, privacy, pseudonyms, series
from dataservice.anonymity import AnonymityError, BucketStats, Release
from dataservice.consent import Access, Level, ProsumerId
from dataservice.privacy import BadEpsilon, Budget, BudgetExhausted
from dataservice.service import DataError, DataService, Forbidden, NotFound, Series, entry
from dataservice.store.repository import DataRepository


@dataclass(frozen=True, slots=True)
class Aggregate:
    area: str
    purpose: str
    level: Level
    buckets: list[tuple[datetime, datetime]]
    energy_kwh: list[float]
    members: int
    epsilon: float | None  # None: exact
    noise_scale_kwh: float | None
    release_id: int


class Refused(Forbidden):
    """Consent, anonymity or budget said no (the access log has a row saying so)."""


def _window(level: Level, start: datetime, end: datetime, now: datetime) -> None:
    try:
        series.check_window(level, start, end)
    except series.SeriesError as err:
        raise DataError(str(err), "bad-window") from None
    if level is not Level.NEAR_REAL_TIME and end > consent.visible_until(level, now):
        raise Refused(
            f"at {level.name} level only closed periods are visible (until "
            f"{consent.visible_until(level, now).isoformat()}); the open day needs NEAR_REAL_TIME",
            "not-closed",
        )


async def pseudonyms_for(
    service: DataService, recipient_id: str, purpose: str, now: datetime
) -> list[str]:
    """The pseudonyms of prosumers whose live grant gives this recipient individual access."""
    async with service.store.transaction() as tx:
        repo = DataRepository(tx.connection)
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound("unknown recipient", "unknown-recipient")
        key = service.pseudonym_key(recipient)
        grants = await repo.grants_to(recipient_id, purpose)
        visible = sorted(
            {g.prosumer_id for g in grants if g.live(now) and g.access is Access.INDIVIDUAL}
        )
        await repo.log(
            entry(
                now,
                f"recipient:{recipient_id}",
                "list",
                recipient_id=recipient_id,
                purpose=purpose,
                detail={"count": len(visible)},
            )
        )
    return sorted(pseudonyms.pseudonym(key, p) for p in visible)


async def individual(
    service: DataService,
    recipient_id: str,
    pseudonym: str,
    purpose: str,
    level: Level,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Series:
    """One prosumer's buckets at `level`, if its consent allows it for this purpose now."""
    actor = f"recipient:{recipient_id}"
    refusal: DataError | None = None
    result: Series | None = None
    async with service.store.transaction() as tx:
        repo = DataRepository(tx.connection)
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound("unknown recipient", "unknown-recipient")
        # Only prosumers that ever granted this recipient anything can answer to its
        # pseudonyms; a revoked grant still resolves, so the refusal can say "revoked".
        grants = await repo.grants_to(recipient_id)
        candidates = sorted({g.prosumer_id for g in grants})
        prosumer = pseudonyms.resolve(service.pseudonym_key(recipient), pseudonym, candidates)
        if prosumer is None:
            refusal = NotFound("unknown pseudonym", "unknown-pseudonym")
            await repo.log(
                entry(
                    now,
                    actor,
                    "read",
                    recipient_id=recipient_id,
                    purpose=purpose,
                    level=level,
                    outcome="refused",
                    reason=refusal.reason,
                    detail={"pseudonym": pseudonym},
                )
            )
        else:
            decision = consent.decide(
                [g for g in grants if g.prosumer_id == prosumer],
                recipient.recipient_id,
                purpose,
                level,
                now,
                access=Access.INDIVIDUAL,
                start=start,
                end=end,
            )
            detail = {"pseudonym": pseudonym, "start": start.isoformat(), "end": end.isoformat()}
            try:
                if not decision.allowed:
                    raise Refused(f"no consent for this: {decision.reason}", decision.reason)
                _window(level, start, end, now)
                result = await _read(service, repo, prosumer, pseudonym, level, start, end)
            except DataError as err:
                refusal = err
            await repo.log(
                entry(
                    now,
                    actor,
                    "read",
                    recipient_id=recipient_id,
                    prosumer_id=prosumer,
                    purpose=purpose,
                    level=level,
                    outcome="allowed" if refusal is None else "refused",
                    reason="allowed" if refusal is None else refusal.reason,
                    detail=detail,
                )
            )
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


async def _read(
    service: DataService,
    repo: DataRepository,
    prosumer: ProsumerId,
    pseudonym: str,
    level: Level,
    start: datetime,
    end: datetime,
) -> Series:
    key = service.prosumer_key(prosumer, await repo.prosumer_key(prosumer))
    blobs = await repo.day_blobs(prosumer, series.days_of(start, end))
    days = {
        day: series.unpack(crypto.open_sealed(key, blob, crypto.day_aad(prosumer, day)))
        for day, blob in blobs.items()
    }
    values = series.values(days, level, start, end)
    buckets = series.buckets(level, start, end)
    return Series(pseudonym, level, buckets, [None if np.isnan(v) else float(v) for v in values])


async def aggregate(
    service: DataService,
    recipient_id: str,
    purpose: str,
    level: Level,
    area: str,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    epsilon: float | None = None,
) -> Aggregate:
    """The area's total per bucket over prosumers whose consent includes this use."""
    actor = f"recipient:{recipient_id}"
    refusal: DataError | None = None
    result: Aggregate | None = None
    detail = {"area": area, "start": start.isoformat(), "end": end.isoformat(), "epsilon": epsilon}
    async with service.store.transaction() as tx:
        repo = DataRepository(tx.connection)
        recipient = await repo.recipient(recipient_id, lock=True)
        if recipient is None:
            raise NotFound("unknown recipient", "unknown-recipient")
        try:
            _window(level, start, end, now)
            result = await _aggregate(
                service,
                repo,
                recipient.epsilon_budget,
                recipient_id,
                purpose,
                level,
                area,
                start,
                end,
                now,
                epsilon,
            )
        except AnonymityError as err:
            refusal = Refused(err.message, err.reason)
        except BudgetExhausted as err:
            refusal = Refused(err.message, "budget-exhausted")
        except BadEpsilon as err:
            refusal = DataError(str(err), "bad-epsilon")
        except DataError as err:
            refusal = err
        await repo.log(
            entry(
                now,
                actor,
                "aggregate",
                recipient_id=recipient_id,
                purpose=purpose,
                level=level,
                release_id=None if result is None else result.release_id,
                outcome="allowed" if refusal is None else "refused",
                reason="allowed" if refusal is None else refusal.reason,
                detail=detail | ({} if result is None else {"members": result.members}),
            )
        )
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


async def _aggregate(
    service: DataService,
    repo: DataRepository,
    budget_total: float,
    recipient_id: str,
    purpose: str,
    level: Level,
    area: str,
    start: datetime,
    end: datetime,
    now: datetime,
    epsilon: float | None,
) -> Aggregate:
    by_prosumer = defaultdict(list)
    for grant in await repo.grants_in_area(recipient_id, purpose, area):
        by_prosumer[grant.prosumer_id].append(grant)
    consenting = sorted(
        p
        for p, grants in by_prosumer.items()
        if consent.decide(
            grants,
            grants[0].recipient_id,
            purpose,
            level,
            now,
            access=Access.AGGREGATE,
            start=start,
            end=end,
        ).allowed
    )
    if len(consenting) < anonymity.MIN_GROUP:  # refuse before decrypting anything
        raise anonymity.TooFewMembers(
            f"{len(consenting)} prosumers in {area!r} consent to this; at least "
            f"{anonymity.MIN_GROUP} are needed"
        )
    buckets = series.buckets(level, start, end)
    lengths = [b_end - b_start for b_start, b_end in buckets]
    bounds = np.array([privacy.bound_wh(length) for length in lengths], dtype=np.int64)
    stats = BucketStats(len(buckets), bounds if epsilon is not None else None)
    await _accumulate(service, repo, consenting, level, start, end, stats)

    anonymity.check_group(stats)
    members = frozenset(stats.members)
    earlier = await repo.releases_to(recipient_id, start, end)
    compare = anonymity.to_compare(members, start, end, earlier)
    anonymity.check_differencing(members, start, end, await repo.releases(compare))

    scale_kwh: float | None = None
    if epsilon is None:
        totals = [round(float(v), 6) for v in stats.total]
    else:
        spent = await repo.epsilon_spent(recipient_id)
        privacy.charge(Budget(total=budget_total, spent=spent), epsilon)
        sensitivity = privacy.sensitivity_wh(lengths)
        noisy = noise.discrete_laplace(stats.clamped_wh.tolist(), sensitivity, epsilon)
        totals = [v / 1000 for v in noisy]
        scale_kwh = sensitivity / epsilon / 1000
    release = Release(members, start, end)
    release_id = await repo.add_release(
        recipient_id, purpose, level, area, release, epsilon or 0.0, now
    )
    return Aggregate(
        area, purpose, level, buckets, totals, len(members), epsilon, scale_kwh, release_id
    )


async def _accumulate(
    service: DataService,
    repo: DataRepository,
    members: list[ProsumerId],
    level: Level,
    start: datetime,
    end: datetime,
    stats: BucketStats,
) -> None:
    """Decrypt each member's days in the window and add its bucket values, one at a time."""
    wrapped = await repo.prosumer_keys(members)
    days = series.days_of(start, end)
    async for prosumer_id, blobs in repo.stream_days(members, days[0], days[-1]):
        opener = crypto.Opener(service.prosumer_key(prosumer_id, wrapped.get(prosumer_id)))
        held = {
            day: series.unpack(opener.open(blob, crypto.day_aad(prosumer_id, day)))
            for day, blob in blobs
        }
        stats.add(prosumer_id, series.values(held, level, start, end))
