"""Write notebooks/00_tour.ipynb (without outputs): one widget per capability on the bundled `stories`
model, ending with one HTML report built from every widget's current view.

Run: ``python tests/browser/make_tour.py``; check: ``jupyter nbconvert --to notebook --execute --stdout notebooks/00_tour.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]

CELLS = [
    new_markdown_cell(
        "# A five-minute tour of the workbench\n\n"
        "One interactive widget per capability, all on the bundled `stories` model (a 4-layer GPT-2 trained by this "
        "project on a synthetic story corpus whose ground truth is known). Run all cells (*Run > Run All Cells*), then "
        "play with the controls: every widget disables its controls and shows a progress bar while it computes, shows "
        "errors inside itself, and has an **Export HTML** button that writes its current view as a self-contained page.\n\n"
        "The numbered notebooks `01`-`05` go deeper into each method, with its validity checks."
    ),
    new_code_cell(
        "import torch\n\n"
        "from interp import load_model\n\n"
        "torch.set_num_threads(1)\n"
        "# A bundled model by name (\"stories\" or \"bb\"). For another model pass a Hugging Face hub name, e.g.\n"
        "# load_model(\"gpt2\") (needs network access the first time), or a local Hugging Face directory:\n"
        "# load_model(\"/path/to/model\"). A GPU is used automatically when there is one.\n"
        "model = load_model(\"stories\", device=\"cpu\")\n"
        "prompt = \"one day mia found a key in the garden . then mia took the\"\n"
        "print(f\"{model.cfg.n_layers} layers, {model.cfg.n_heads} heads, d_model {model.cfg.d_model}, vocabulary {model.cfg.d_vocab}\")"
    ),
    new_markdown_cell(
        "## 1. Lenses: what does each layer predict?\n\n"
        "Rows are layers, columns positions. Switch the **lens** between the logit lens, the shipped tuned lens and "
        "LatentLens (nearest neighbours among contextual representations of a small corpus, built on first use), "
        "and the **colour** statistic; click a cell for its top tokens."
    ),
    new_code_cell("from widgets.lens import LensExplorer\n\nlens = LensExplorer(model, prompt, target=\"key\")\nlens"),
    new_markdown_cell(
        "## 2. Extreme tokens: attention sinks, value drains, residual peaks\n\n"
        "Which heads dump their attention on the first token, how small the value vectors there are, and where the "
        "residual stream norm peaks. (`02_extreme_tokens` shows the mechanism on the `bb` model, where it is planted.)"
    ),
    new_code_cell("from widgets.extreme import SinkExplorer\n\nsinks = SinkExplorer(model, prompt + \" key home .\")\nsinks"),
    new_markdown_cell(
        "## 3. Bigram subnetwork\n\n"
        "A sparse mask over the MLP weights (found by continuous sparsification) that makes the model predict like "
        "the corpus' bigram table. Compare the full model, the subnetwork alone and the model with it ablated."
    ),
    new_code_cell(
        "from widgets.subnetworks import SubnetworkExplorer\n\n"
        "subnet = SubnetworkExplorer(model, \"../data/subnetworks/stories-bigram.safetensors\", prompt)\nsubnet"
    ),
    new_markdown_cell(
        "## 4. Token attribution\n\n"
        "Which earlier tokens made the model predict its next token? Switch the **method** (ReAGent, Integrated "
        "Gradients and its baselines, gradients, occlusion, ...)."
    ),
    new_code_cell(
        "from widgets.attribution import AttributionExplorer\n\n"
        "attribution = AttributionExplorer(model, prompt, method=\"occlusion\")\nattribution"
    ),
    new_markdown_cell(
        "## 5. GrAInS steering\n\n"
        "A steering vector built from Integrated-Gradients attributions of contrasting answers (true vs lied-about "
        "favourite food), added to the residual stream with the norm preserved. Move **alpha** and watch the "
        "preferred answer overtake the dispreferred one."
    ),
    new_code_cell(
        "from interp.steering import SteeringVectors, load_contrast\n"
        "from widgets.steering import SteeringPlayground\n\n"
        "grains = SteeringVectors.load(\"../data/steering/stories_grains.safetensors\")\n"
        "example = load_contrast(\"../data/contrast/stories_heldout_uncued.jsonl\")[0]\n"
        "steer = SteeringPlayground(model, {\"grains\": grains}, prompt=example.prompt, preferred=example.preferred,\n"
        "                           dispreferred=example.dispreferred, alpha=grains.meta[\"alpha\"], max_alpha=20)\n"
        "steer"
    ),
    new_markdown_cell(
        "## 6. One report from everything above\n\n"
        "Each widget adds its *current* view (figures, tables, coloured tokens) to one self-contained HTML file that "
        "opens offline: plotly.js is inlined once and nothing is fetched from the network. "
        "From a terminal, `interp report --model stories --prompt \"...\"` writes a similar report without a notebook."
    ),
    new_code_cell(
        "from interp.report import Report\n\n"
        "report = Report(\"Workbench tour\", f\"stories model, prompt: {prompt}\")\n"
        "for widget in (lens, sinks, subnet, attribution, steer):\n"
        "    widget.add_to_report(report)\n"
        "path = report.save(\"tour_report.html\")\n"
        "print(f\"wrote {path.resolve()} ({path.stat().st_size / 1e6:.1f} MB, {len(report.sections)} sections)\")"
    ),
]


def main() -> Path:
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = REPO / "notebooks" / "00_tour.ipynb"
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    print(main())
