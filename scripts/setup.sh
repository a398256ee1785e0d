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

# Fashion-MNIST (the default model's data set) comes from Debian's package where apt is ours.
# As root this runs apt-get (said below, before and after); if it fails (e.g. another apt holds
# the lock past the timeout), setup still finishes but is not marked done, so the next
# 'make demo' / 'make setup' tries again.
complete=1
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "setup: running as root: apt-get update, then apt-get install dataset-fashion-mnist" \
             "(Debian's Fashion-MNIST files for the default model, into /usr/share/datasets)"
        if apt-get -o DPkg::Lock::Timeout=120 update -qq \
           && apt-get -o DPkg::Lock::Timeout=120 install -y -qq dataset-fashion-mnist > /dev/null
        then
            echo "setup: as root, installed the Debian package dataset-fashion-mnist"
        else
            complete=0
            echo "setup: apt-get install dataset-fashion-mnist FAILED (see above); the demo" \
                 "falls back to the MNIST subset. The next 'make setup' tries again; or pass" \
                 "--data-dir with your own copy of the IDX files"
        fi
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
echo "setup: if pip printed \"ERROR: pip's dependency resolver ... spikingjelly 2.0.0 requires" \
     "torchaudio/torchvision\" above, that is expected and harmless: fireflys does not use the" \
     "parts of SpikingJelly that need them (installed with --no-deps on purpose)"
# The [interop] extra (NIR, snnTorch and its exporter nirtorch) the same careful way: nirtorch
# declares torch, so --no-deps keeps the torch installed above; their runtime needs (numpy,
# h5py) came with [train]. Pinned versions make this a no-op when they are already there.
echo "setup: installing the [interop] extra (nir, nirtorch, snntorch)"
pip install --no-deps "nir==1.0.8" "nirtorch==2.0.5" "snntorch==1.0.0"
if [ "$complete" = 1 ]; then
    touch "$VENV/.installed"       # make's mark: set up, nothing to retry
    echo "setup: done ($VENV)"
else
    rm -f "$VENV/.installed"
    echo "setup: done ($VENV), except the step that failed above (retried next time)"
fi
