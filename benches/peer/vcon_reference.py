#!/usr/bin/env python3
"""Reference transcript of a vCon file, as plain text.

    python3 benches/peer/vcon_reference.py FILE.vcon.json [...]   # prints each transcript
    from vcon_reference import reference_text, reference_paragraphs  # importable, stdlib only

Where the text lives (TADHack vCon 0.0.1 files under shared/eval/transcripts/en_vcon_tadhack_synthetic/):

    $.analysis[?(@.type == "transcript")].body.transcript

i.e. the `analysis` entry whose `type` is "transcript" (vendor "deepgram", `dialog` 0,
`encoding` "none"). Its `body` is an object {transcript, confidence, detected_language};
`body.transcript` is one string whose paragraphs (speaker turns, in order) are separated by
a blank line ("\\n\\n"). Splitting on "\\n\\n" gives exactly the `paragraphs_in_order` list of
calls_index.jsonl. The `diarized` entry (vendor openai) holds the same string; the `summary`
entry is not a transcript. If an `encoding` were "json", the body would be a JSON string and
is decoded first.
"""
import json
import sys
from typing import List, Union


def _body(entry: dict):
    body = entry.get("body")
    if entry.get("encoding") == "json" and isinstance(body, str):
        body = json.loads(body)
    return body


def reference_paragraphs(vcon: Union[str, dict]) -> List[str]:
    """Paragraphs (speaker turns, in order) of the vCon's Deepgram transcript."""
    if not isinstance(vcon, dict):
        with open(vcon, encoding="utf-8") as f:
            vcon = json.load(f)
    analyses = vcon.get("analysis") or []
    for want in ("transcript", "diarized"):
        for entry in analyses:
            if entry.get("type") != want:
                continue
            body = _body(entry)
            if isinstance(body, dict):
                text = body.get("transcript")
                if text is None and "paragraphs" in body:  # tolerate a paragraphs list
                    return [str(p).strip() for p in body["paragraphs"] if str(p).strip()]
            else:
                text = body
            if isinstance(text, str) and text.strip():
                return [p.strip() for p in text.split("\n\n") if p.strip()]
    raise ValueError("no transcript analysis in vCon")


def reference_text(vcon: Union[str, dict]) -> str:
    """The reference transcript as plain text, one paragraph per line."""
    return "\n".join(reference_paragraphs(vcon))


def main(argv: List[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for i, path in enumerate(argv):
        if len(argv) > 1:
            print(("\n" if i else "") + "== " + path)
        print(reference_text(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
