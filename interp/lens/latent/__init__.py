"""LatentLens: describe a hidden state by its nearest contextual token states from a text corpus.

- ``layers``: layer numbering (Hugging Face ``hidden_states``), hooks, states of a batch;
- ``index``: ``LatentIndex``, the in-memory index (build from a corpus, keep rules, search, save / load);
- ``sharded`` / ``manifest``: ``ShardedIndex``, a sharded index on disk searched without loading it
  (built by ``interp.scale.build_index``), and its files;
- ``search``: exact chunked top-k, FAISS, the merge rule, ``Neighbors``; ``files``: checked reading of index files;
- ``readout``: ``latent_lens(model, prompt, index)``, the readout of a prompt.

``index.search(vectors, k)`` returns the top-k cosine neighbours of any vectors over every stored layer,
merged by cosine (each hit says which layer it came from): exact chunked matmul by default, or FAISS
(``backend="faiss"``) with any index factory string.
"""

from interp.lens.latent.index import LatentIndex
from interp.lens.latent.layers import default_layers, layer_hook, layer_label, layer_states, prefix_hashes
from interp.lens.latent.readout import LatentLensResult, latent_lens
from interp.lens.latent.search import Neighbors
from interp.lens.latent.sharded import ShardedIndex

__all__ = ["LatentIndex", "ShardedIndex", "Neighbors", "LatentLensResult", "latent_lens", "default_layers", "layer_hook",
           "layer_label", "layer_states", "prefix_hashes"]
