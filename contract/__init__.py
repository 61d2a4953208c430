"""The artifact contract: what training writes into `<root>/<model>/<version>/` and the service reads.

No web framework lives here, so that training, the service and the benchmarks can all
depend on it and on nothing of each other:

- `kinds`: the open registry of model kinds (a card's `task`): the signature's input name,
  dtype and per-item shape, and the card's `input` section for each kind;
- `card`: the model card (`model.json`) schema, reading and writing it;
- `layout`: version folders (positive integers, newest = highest) and how to find them;
- `savedmodel`: loading a version and checking its `serving_default` against its card;
- `publish`: the one atomic way to publish a new version (stage, check, rename);
- `pixels`: an opened image -> the image model's input, the same in training and serving;
- `speed`: in-process throughput of a loaded version, and the machine it was measured on.
- `tokens`: the text models' normalisation rules, and the same words in Python with their offsets;
- `occlusion`: the explanation method (the parts left out, and what a weight is);
- `verification`: a version's verification sample (held-out inputs, labels, the float32 outputs),
  reading and writing it, and comparing a runtime's outputs with it (agreement, accuracy, ECE).
"""
