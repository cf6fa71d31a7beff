"""Helpers shared by the test modules (imported as ``support.<module>``).

* ``redis_server``: the test Redis URL (the local server if it answers, else a private
  ``redis-server``), key-prefix cleanup, private servers for outage tests;
* ``redis_cluster``: a throwaway Redis Cluster on loopback ports;
* ``speech``: the espeak-ng speech fixtures, decoding to 16 kHz, WER;
* ``deepgram_audio``: tone-burst windows whose word times the fake Deepgram server
  knows.

The helpers users may want (media generators, the fake Deepgram server, the
model-free transcriber) are shipped in :mod:`audioflow.testing` instead.
"""
