"""Corpus-scale work on one process or a Ray cluster: sharded, resumable LatentLens indexes and extreme-token scans.

- ``build_index(model, corpus, out=...)``: a sharded LatentLens index (open it with ``LatentIndex.open``);
- ``scan_corpus(model, corpus)``: the extreme-token report of a corpus, merged from per-shard statistics;
- ``activity_corpus(model, domains)``: active/dormant heads of large domains, merged from per-shard ``HeadActivity``;
- ``backend="local"`` (default, in-process) or ``"ray"`` (Ray Data ``map_batches``, one model actor per worker);
  both run the same ``Worker`` on the same shards, so they give the same index and the same report.
"""

from interp.scale.activity import activity_corpus
from interp.scale.backends import BACKENDS, require_ray
from interp.scale.corpus import read_corpus
from interp.scale.index import build_index
from interp.scale.scan import scan_corpus
from interp.scale.worker import Worker

__all__ = ["build_index", "scan_corpus", "activity_corpus", "read_corpus", "Worker", "BACKENDS", "require_ray"]
