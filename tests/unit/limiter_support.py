"""What the rate limiter tests share: a clock they move by hand and a one-bucket need."""

from ladle.gateway.ratelimit import Bucket, Need


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def calls(key: str, limit: int) -> Need:
    return Need((Bucket(key, limit),), 1, f"{limit} calls")


async def same_step(rng, buckets: list[Bucket], reference, other, tol: float, step: int = 0) -> None:
    """One step of a random trace on two limiters: a charge of both (a fifth of the steps) or
    needs acquired from both, whose waits and refused need must agree."""
    import pytest

    if rng.random() < 0.2:
        picked = rng.sample(buckets, rng.randint(1, 3))
        amount = rng.choice([0, 1, 7, 40])
        await reference.charge(picked, amount)
        await other.charge(picked, amount)
        return
    needs = [Need(tuple(rng.sample(buckets, rng.randint(1, 2))), rng.choice([0, 1, 1, 2]), f"n{j}")
             for j in range(rng.randint(1, 3))]
    (rw, rn), (ow, on) = await reference.acquire(needs), await other.acquire(needs)
    assert ow == pytest.approx(rw, abs=tol) and on is rn, step
