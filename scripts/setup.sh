#!/usr/bin/env bash
# Sets up fireflys in a virtual environment (.venv by default): PyTorch (CPU unless told
# otherwise), SpikingJelly without its CUDA-pulling metadata, and fireflys itself.
#
#   TORCH_INDEX_URL  a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cpu for a
#                    CPU-only wheel on machines where the default is a CUDA build, or
#                    https://download.pytorch.org/whl/cu126 for an NVIDIA GPU
#   TORCH_VERSION    default 2.13.0
#   VENV, PYTHON     where to put the environment and which interpreter builds it
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing PyTorch $TORCH_VERSION${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
    pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$TORCH_VERSION"
fi
# SpikingJelly 2.0 declares torchvision/torchaudio, which would replace torch with a CUDA build;
# its runtime needs are in fireflys' [train] extra instead.
pip install --no-deps "spikingjelly==2.0.0"
echo "setup: installing fireflys and its dependencies"
pip install -e ".[train,dev]"
echo "setup: done ($VENV)"
