"""Bigram subnetworks (Chang & Bergen 2025): continuous-sparsification masks over a model's weight matrices.

- ``bigram_table(model, texts)``: the bigram target counted on the model's own tokenization.
- ``find_bigram_subnetwork(model, texts, lam=...)``: masks whose masked model predicts the bigram.
- ``find_pruned_subnetwork(model, texts, lam=...)``: the same with the full model's distribution as target.
- ``Subnetwork``: masks, kept fractions, save/load, ``only``/``ablated``/``random`` context managers.
- ``evaluate(model, subnetwork, texts)``: surprisal correlation, bigram cross-entropy, ablation losses.
- ``overlap(a, b)``: shared entries against a shuffled-within-matrix null.
"""

from interp.subnetworks.bigram import BigramTable, bigram_table, encode_texts
from interp.subnetworks.evaluate import SubnetworkEval, evaluate
from interp.subnetworks.maskable import MaskableWeight, find_maskable
from interp.subnetworks.overlap import Overlap, overlap
from interp.subnetworks.subnetwork import Subnetwork
from interp.subnetworks.train import find_bigram_subnetwork, find_pruned_subnetwork

__all__ = [
    "BigramTable", "bigram_table", "encode_texts", "find_bigram_subnetwork", "find_pruned_subnetwork", "Subnetwork",
    "evaluate", "SubnetworkEval", "overlap", "Overlap", "find_maskable", "MaskableWeight",
]
