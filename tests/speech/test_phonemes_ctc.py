"""CTC greedy decoding with frame timestamps, on crafted logits (no model needed)."""

from __future__ import annotations

import numpy as np

from heygem_daemon.speech.ctc import PhoneSegment, ctc_segments, fill_gaps, greedy_ids

TOKENS = {0: "<pad>", 1: "|", 2: "m", 3: "a", 4: "p"}
FRAME_S = 0.02


def logits_for(ids: list[int], vocab: int = 5) -> np.ndarray:
    """Logits whose arg-max per frame is ``ids`` (with some noise on the others)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 0.1, (len(ids), vocab))
    logits[np.arange(len(ids)), ids] = 5.0
    return logits


def decode(ids: list[int]) -> list[PhoneSegment]:
    return ctc_segments(greedy_ids(logits_for(ids)), FRAME_S, blank_id=0, tokens=TOKENS, skip_ids={1})


def test_runs_become_timed_segments():
    """Runs of a token become one segment from its first frame to after its last (20 ms frames)."""
    segments = decode([0, 2, 2, 0, 0, 3, 3, 3, 0])
    assert [PhoneSegment("m", 0.02, 0.06), PhoneSegment("a", 0.10, 0.16)] == segments


def test_blank_separates_repeated_tokens():
    """The same token twice with a blank between is two phones; without a blank it is one."""
    assert len(decode([2, 0, 2])) == 2
    assert len(decode([2, 2, 2])) == 1


def test_word_delimiter_and_unknown_ids_yield_nothing():
    """The word delimiter separates phones but is not one; ids outside the vocabulary are dropped."""
    ids = np.array([4, 1, 4, 7, 3])
    segments = ctc_segments(ids, FRAME_S, blank_id=0, tokens=TOKENS, skip_ids={1})
    assert ["p", "p", "a"] == [s.name for s in segments]
    assert [0.0, 0.04, 0.08] == [round(s.start_s, 6) for s in segments]


def test_empty_and_all_blank_inputs():
    """No frames or only blanks give no phones."""
    assert [] == decode([])
    assert [] == decode([0, 0, 0])


def test_fill_gaps_holds_each_phone_until_the_next_but_not_across_pauses():
    """A spiky phone lasts until the next one starts, at most 0.3 s, never past the audio's end."""
    spikes = [PhoneSegment("m", 0.0, 0.02), PhoneSegment("a", 0.1, 0.12), PhoneSegment("p", 2.0, 2.02)]
    filled = fill_gaps(spikes, end_s=2.1)
    assert [(0.0, 0.1), (0.1, 0.4), (2.0, 2.1)] == [(s.start_s, round(s.end_s, 6)) for s in filled]
