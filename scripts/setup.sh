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

# Fashion-MNIST (the default model's data set) comes from Debian's package where apt is ours
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "setup: installing Debian's dataset-fashion-mnist"
        (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist > /dev/null) \
            || echo "setup: could not install dataset-fashion-mnist; pass --data-dir to use your own copy"
    else
        echo "setup: note: Fashion-MNIST not found; 'sudo apt-get install dataset-fashion-mnist'" \
             "or pass --data-dir with the IDX files"
    fi
fi

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
# The [interop] extra (NIR, snnTorch and its exporter nirtorch) the same careful way: nirtorch
# declares torch, so --no-deps keeps the torch installed above; their runtime needs (numpy,
# h5py) came with [train]. Pinned versions make this a no-op when they are already there.
echo "setup: installing the [interop] extra (nir, nirtorch, snntorch)"
pip install --no-deps "nir==1.0.8" "nirtorch==2.0.5" "snntorch==1.0.0"
echo "setup: done ($VENV)"
