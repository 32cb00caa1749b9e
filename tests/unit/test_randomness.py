"""novalite.randomness: buffered secure bytes, uuids and uniform characters."""

from __future__ import annotations

import os
import re
import uuid

from novalite import randomness


def test_random_chars_uses_every_character_evenly() -> None:
    """36 characters: with a plain ``byte % 36`` the first 4 would come up 8/7 as often."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    drawn = randomness.random_chars(alphabet, 72_000)
    assert len(drawn) == 72_000 and set(drawn) == set(alphabet)
    counts = sorted(drawn.count(c) for c in alphabet)
    assert counts[0] > 1_800 and counts[-1] < 2_200  # expected 2,000 each; +-10 % is > 9 sigma
    assert len({randomness.random_chars(alphabet, 8) for _ in range(200)}) == 200


def test_uuid4_is_a_version_4_uuid_and_never_repeats() -> None:
    ids = [randomness.uuid4() for _ in range(5000)]
    assert len(set(ids)) == 5000
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", text)


def test_token_bytes_sizes_and_chunk_boundaries() -> None:
    seen = b"".join(randomness.token_bytes(n) for n in [1, 7, 1000, 1023, 16, 3] * 20)
    assert len(seen) == (1 + 7 + 1000 + 1023 + 16 + 3) * 20
    assert len(randomness.token_bytes(5000)) == 5000  # larger than the buffer's quarter: read directly
    assert len({randomness.token_bytes(16) for _ in range(1000)}) == 1000


def test_a_forked_child_does_not_repeat_the_parents_bytes() -> None:
    randomness.token_bytes(1)  # the parent's buffer now holds unread bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the next bytes it hands out
        os.write(write, randomness.token_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != randomness.token_bytes(32)
