"""Which offsets may be committed: only those below the first event still being delivered."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Partition:
    outstanding: dict[int, int] = field(default_factory=dict)
    next_offset: int | None = None
    committed: int | None = None


class OffsetTracker:
    """Counts unfinished deliveries per (partition, offset); a commit never skips one."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def track(self, partition: int, offset: int, deliveries: int) -> None:
        """A consumed record with ``deliveries`` channels still to deliver or dead-letter."""
        state = self._partitions.setdefault(partition, _Partition())
        if deliveries > 0:
            state.outstanding[offset] = state.outstanding.get(offset, 0) + deliveries
        state.next_offset = max(state.next_offset or 0, offset + 1)

    def done(self, partition: int, offset: int) -> None:
        """One channel of that record delivered or dead-lettered."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.outstanding:
            return  # the partition was revoked meanwhile: its new owner redelivers
        state.outstanding[offset] -= 1
        if state.outstanding[offset] <= 0:
            del state.outstanding[offset]

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit now, where it moved since the last commit."""
        moved = {}
        for partition, state in self._partitions.items():
            if state.next_offset is None:
                continue
            offset = min(state.outstanding) if state.outstanding else state.next_offset
            if offset != state.committed:
                moved[partition] = offset
        return moved

    def committed(self, offsets: dict[int, int]) -> None:
        """Remember what was committed."""
        for partition, offset in offsets.items():
            if partition in self._partitions:
                self._partitions[partition].committed = offset

    def forget(self, partitions: list[int]) -> None:
        """Drop revoked partitions."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def outstanding(self) -> int:
        """Deliveries not finished yet, over all partitions."""
        return sum(sum(s.outstanding.values()) for s in self._partitions.values())
