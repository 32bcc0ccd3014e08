#!/usr/bin/env python3
"""Rough WER of faster_whisper_run.py output against the vCon reference transcripts.

    python3 benches/peer/wer.py RUN.jsonl [RUN2.jsonl ...]   (or the JSONL on stdin)

For each JSON line {"file": X.mp3, "text": ...} the reference is X.vcon.json beside the audio
(see vcon_reference.py). Normalisation is deliberately simple: lowercase, drop apostrophes
("I'm" -> "im"), every other non-alphanumeric character becomes a space, split on whitespace.
No number normalisation ("four zero one" vs "401" counts as errors). Total WER is corpus-level:
sum of word edits / sum of reference words. Stdlib only.
"""
import json
import re
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vcon_reference import reference_text  # noqa: E402

_APOS = re.compile(r"['\u2019`]")
_NONWORD = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalise(text: str):
    text = _APOS.sub("", text.lower())
    return _NONWORD.sub(" ", text).split()


def edit_distance(ref, hyp) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_errors(ref_text: str, hyp_text: str):
    """(word edits, reference word count) after normalisation."""
    ref, hyp = normalise(ref_text), normalise(hyp_text)
    return edit_distance(ref, hyp), len(ref)


def main(argv):
    streams = [open(p, encoding="utf-8") for p in argv] or [sys.stdin]
    errs = words = 0
    for stream in streams:
        for line in stream:
            line = line.strip()
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if "file" not in rec or "text" not in rec:
                continue
            ref_path = rec["file"][: rec["file"].rfind(".")] + ".vcon.json"
            e, n = word_errors(reference_text(ref_path), rec["text"])
            errs += e
            words += n
            print(f"{os.path.basename(rec['file'])}\twer={e / max(n, 1):.4f}\t({e}/{n})")
    print(f"TOTAL\twer={errs / max(words, 1):.4f}\t({errs}/{words})")


if __name__ == "__main__":
    main(sys.argv[1:])
