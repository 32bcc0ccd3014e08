#!/usr/bin/env python3
"""faster-whisper benchmark peer for callqa: transcribe files offline, one JSON line per file.

    target/peer-venv/bin/python benches/peer/faster_whisper_run.py \\
        --model target/peer-models/whisper-base-ct2 --threads 2 --beam-size 5 \\
        --language en --vad  FILE.mp3 [FILE.mp3 ...]

stdout: one JSON line per file
    {"file", "seconds" (wall time of that file: decode + resample + VAD + transcription, the
     segment generator fully consumed), "audio_seconds", "speech_seconds" (after VAD),
     "language", "text"}
stderr: JSON lines {"event": "load", ...} (model load time, plus the VAD model when --vad)
        and {"event": "summary", ...} at the end; also --reference adds per-file "wer".

Model: WhisperModel(DIR, device="cpu", compute_type="int8", cpu_threads=--threads), loaded once.
Offline: HF_HUB_OFFLINE=1 is set before faster_whisper is imported; DIR must be an existing
CTranslate2 Whisper dir holding model.bin, config.json, vocabulary.json and tokenizer.json
(without tokenizer.json faster-whisper would fetch one from the hub). The Silero VAD model is
the silero_vad_v6.onnx asset shipped inside the faster-whisper wheel.
"""
import argparse
import json
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def log(obj):
    print(json.dumps(obj, ensure_ascii=False), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="CTranslate2 Whisper model dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--language", default="en", help="en, zh, ... or auto")
    ap.add_argument("--vad", action="store_true", help="Silero VAD filter (bundled asset)")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--reference", action="store_true",
                    help="also compute WER against FILE's sibling .vcon.json (see wer.py)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    need = ["model.bin", "config.json", "vocabulary.json", "tokenizer.json"]
    missing = [f for f in need if not os.path.isfile(os.path.join(args.model, f))]
    if missing:
        sys.exit(f"model dir {args.model!r} lacks {missing} (run benches/peer/setup.sh)")

    t0 = time.perf_counter()
    import faster_whisper
    from faster_whisper import WhisperModel
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = WhisperModel(args.model, device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads, num_workers=1)
    t_model = time.perf_counter() - t0
    t_vad = 0.0
    if args.vad:
        from faster_whisper.vad import get_vad_model
        t0 = time.perf_counter()
        get_vad_model()  # lru_cached: load it here so the first file's time does not include it
        t_vad = time.perf_counter() - t0
    import ctranslate2
    log({"event": "load", "import_seconds": round(t_import, 3),
         "model_load_seconds": round(t_model, 3), "vad_load_seconds": round(t_vad, 3),
         "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
         "compute_type": args.compute_type, "threads": args.threads,
         "beam_size": args.beam_size, "language": args.language, "vad": args.vad})

    language = None if args.language == "auto" else args.language
    total = audio_total = 0.0
    errs = words = 0
    for path in args.files:
        t0 = time.perf_counter()
        segments, info = model.transcribe(path, language=language, beam_size=args.beam_size,
                                          vad_filter=args.vad)
        text = " ".join(s.text.strip() for s in segments).strip()  # consumes the generator
        dt = time.perf_counter() - t0
        total += dt
        audio_total += info.duration
        rec = {"file": path, "seconds": round(dt, 3), "audio_seconds": round(info.duration, 3),
               "speech_seconds": round(info.duration_after_vad, 3),
               "language": info.language, "text": text}
        if args.reference:
            from wer import word_errors
            from vcon_reference import reference_text
            ref = path[: path.rfind(".")] + ".vcon.json"
            e, n = word_errors(reference_text(ref), text)
            errs += e
            words += n
            rec["wer"] = round(e / max(n, 1), 4)
        print(json.dumps(rec, ensure_ascii=False), flush=True)

    summary = {"event": "summary", "files": len(args.files), "total_seconds": round(total, 3),
               "audio_seconds": round(audio_total, 3),
               "rtf": round(total / audio_total, 4) if audio_total else None}
    if args.reference:
        summary["wer"] = round(errs / max(words, 1), 4)
        summary["ref_words"] = words
    log(summary)


if __name__ == "__main__":
    main()
