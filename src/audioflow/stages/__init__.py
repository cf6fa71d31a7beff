"""Pipeline stages: the stage contract, Decode, Quality and DetectSpeech."""
