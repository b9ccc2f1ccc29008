#!/usr/bin/env bash
# (Re)creates test/fixtures/speech/ from Debian's pocketsphinx-testdata package: real human
# recordings with reference text, for test/real-speech.spec.ts. The synthetic voices of the shared
# corpus never stumble, breathe or mumble; these do.
#
#   apt-get install pocketsphinx-testdata sox
#   scripts/fixtures-speech.sh            # or POCKETSPHINX_TESTDATA=/other/data scripts/fixtures-speech.sh
#
# Only files whose licence allows redistribution and that ship a reference transcript are copied
# (see test/fixtures/speech/README.md for the ones left out and why). Output is deterministic:
# running it twice gives byte-identical files, so a re-run shows up in git only if Debian changed.
set -euo pipefail

DATA=${POCKETSPHINX_TESTDATA:-/usr/share/pocketsphinx/test/data}
COPYRIGHT=${POCKETSPHINX_TESTDATA_COPYRIGHT:-/usr/share/doc/pocketsphinx-testdata/copyright}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/test/fixtures/speech"

for tool in sox soxi node; do
  command -v "$tool" >/dev/null || { echo "fixtures-speech: $tool is required (apt-get install sox nodejs)" >&2; exit 1; }
done
[ -d "$DATA/librivox" ] || { echo "fixtures-speech: $DATA not found (apt-get install pocketsphinx-testdata)" >&2; exit 1; }

mkdir -p "$OUT"
# The package's copyright file travels with the audio: BSD-2-Clause asks for the notice to be kept.
cp "$COPYRIGHT" "$OUT/COPYRIGHT.pocketsphinx-testdata"

# The engines and Sotto's decoder expect 16 kHz mono 16-bit PCM: refuse anything else rather than
# silently resample, because a resampled file would no longer be "the same audio" as upstream's.
check_wav() {
  local f=$1
  local rate channels bits
  rate=$(soxi -r "$f")
  channels=$(soxi -c "$f")
  bits=$(soxi -b "$f")
  if [ "$rate" != 16000 ] || [ "$channels" != 1 ] || [ "$bits" != 16 ]; then
    echo "fixtures-speech: $f is ${rate} Hz, ${channels} ch, ${bits} bit; expected 16000 Hz mono 16 bit" >&2
    exit 1
  fi
}

# WAV → WAV through sox gives a canonical 44-byte header whatever the source had, samples untouched
# (-D: no dither, the format does not change).
to_wav() {
  check_wav "$1"
  sox -D "$1" -t wav -e signed-integer -b 16 -c 1 -r 16000 "$2"
}

# Headerless .raw files of the package are 16 kHz 16-bit mono little-endian PCM (what upstream's
# tests decode them as; checked: pocketsphinx gives the expected words and times with that reading).
raw_to_wav() {
  sox -D -t raw -r 16000 -e signed-integer -b 16 -c 1 -L "$1" -t wav "$2"
}

entries=()
add_entry() { # file text source licence kind
  entries+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5")
}

# Upstream transcription lines look like "<s> words </s> (fileid)".
transcript_for() { # transcription-file fileid
  grep -F "($2)" "$1" | sed -E 's/^<s>[[:space:]]*//; s/[[:space:]]*<\/s>[[:space:]]*\([^)]*\)[[:space:]]*$//; s/[[:space:]]+/ /g'
}

LIBRIVOX_LICENCE='Public domain (LibriVox recording of Jane Austen, Sense and Sensibility, 1811); redistributed by CMU Sphinx under BSD-2-Clause'
while read -r id; do
  [ -n "$id" ] || continue
  short=librivox-${id##*-}
  to_wav "$DATA/librivox/$id.wav" "$OUT/$short.wav"
  add_entry "$short.wav" "$(transcript_for "$DATA/librivox/transcription" "$id")" \
    "pocketsphinx-testdata: test/data/librivox/$id.wav, text from test/data/librivox/transcription" \
    "$LIBRIVOX_LICENCE" read
done <"$DATA/librivox/fileids"

CMU_LICENCE='BSD-2-Clause (Carnegie Mellon University, Alpha Cephei Inc.; see COPYRIGHT.pocketsphinx-testdata)'
while read -r id; do
  [ -n "$id" ] || continue
  to_wav "$DATA/cards/$id.wav" "$OUT/cards-$id.wav"
  add_entry "cards-$id.wav" "$(transcript_for "$DATA/cards/cards.transcription" "$id")" \
    "pocketsphinx-testdata: test/data/cards/$id.wav, text from test/data/cards/cards.transcription" \
    "$CMU_LICENCE" command
done <"$DATA/cards/cards.fileids"

raw_to_wav "$DATA/goforward.raw" "$OUT/goforward.wav"
# No transcription file ships for goforward.raw; its words are the ones upstream's own unit tests
# expect from it (test_decode and friends assert "go forward ten meters").
add_entry goforward.wav 'go forward ten meters' \
  'pocketsphinx-testdata: test/data/goforward.raw (16 kHz 16-bit mono LE PCM, wrapped in a WAV header), text from upstream unit tests' \
  "$CMU_LICENCE" command

# JSON written by node so quoting can never go wrong; the layout is what Prettier keeps.
printf '%s\n' "${entries[@]}" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
  const refs = lines.map((l) => {
    const [file, text, source, licence, kind] = l.split("\t");
    if (!text) throw new Error(`no reference text for ${file}`);
    return { file, text, source, licence, kind };
  });
  process.stdout.write(JSON.stringify(refs, null, 2) + "\n");
' >"$OUT/references.json"

echo "fixtures-speech: wrote ${#entries[@]} recordings to ${OUT#"$ROOT"/} ($(du -sh "$OUT" | cut -f1))"
