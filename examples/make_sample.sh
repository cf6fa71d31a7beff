#!/usr/bin/env bash
# How examples/sample.flac was made (not run by tests or CI): espeak-ng from Debian's
# packages, then 16 kHz mono FLAC. The reference text is examples/sample.txt.
set -euo pipefail
cd "$(dirname "$0")"
espeak-ng -v en-us -s 150 -w /tmp/audioflow-sample.wav "$(cat sample.txt)"
ffmpeg -y -loglevel error -i /tmp/audioflow-sample.wav -ac 1 -ar 16000 sample.flac
rm /tmp/audioflow-sample.wav
