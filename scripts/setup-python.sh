#!/usr/bin/env bash
# Create the Python virtual environment used ONLY to generate reference fixtures and run the
# parity harness (models/sam/*.py). omniseg itself never runs Python.
# Idempotent: does nothing when .venv already imports transformers and torch.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ] && .venv/bin/python -c "import transformers, torch" >/dev/null 2>&1; then
  echo "setup-python: .venv is ready ($(.venv/bin/python -c 'import transformers, torch; print("transformers", transformers.__version__, "torch", torch.__version__)'))"
  exit 0
fi

# This workplace's machines carry a local package index (no network): use it directly when present,
# so pip does not spend minutes retrying an unreachable default index.
index=()
if [ -d /opt/pypi/simple ]; then
  index=(--index-url file:///opt/pypi/simple --extra-index-url file:///opt/pypi-more/simple)
fi
# torchvision stays out: with the cached wheels it breaks transformers' model imports, and without
# it transformers uses the PIL image processors, which are the preprocessing omniseg matches.
python3 -m venv .venv && .venv/bin/pip install "${index[@]}" "torch<=2.14.1" "transformers>=5" pillow safetensors
