"""What the rate limiter tests share: a clock they move by hand and a one-bucket need."""

from ladle.gateway.ratelimit import Bucket, Need


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def calls(key: str, limit: int) -> Need:
    return Need((Bucket(key, limit),), 1, f"{limit} calls")
