#!/usr/bin/env bash
# GPU recipe for the out-of-fold field readers (issue #28): on one H100/H200 with 16 cores, train
# 5 folds x 2 seeds side by side (parallel_crossfit.py: ten processes, one GPU), 30 epochs each
# under a wall-clock cap, write their results (fieldreader_crossfit_gpu30_s<seed>.{json,md} and the
# out-of-fold readings) and pack the ten readers small enough to come back (pack_readers.py: about
# 4 MB each as float16 differences from the stock weights).
#
#   bash benchmarks/fieldreader/crossfit_gpu.sh prepare   # here, on the CPU host: what travels, into .gpu_crossfit/
#   bash benchmarks/fieldreader/crossfit_gpu.sh run       # on the GPU machine (device tool: carry [".gpu_crossfit"])
#   bash benchmarks/fieldreader/crossfit_gpu.sh check     # here: the whole `run` path on CPU, tiny
#
# Back on the CPU host: `pack_readers.py unpack <parts> --check 40` rebuilds the fold readers and
# measures how many fields they read as the originals did; then labels_benchmark.py --readings,
# oof_ensemble_benchmark.py and folds_ensemble_benchmark.py measure them like any fold readers.
#
# The GPU machine starts bare and cannot reach the internet; its image has Python 3.12 with torch,
# pytorch-lightning, transformers, onnx, onnxruntime, opencv, pandas, scikit-learn. `prepare` puts
# into .gpu_crossfit/ (ignored by git, ~45 MB): the shared train crops, the PP-OCRv6 recognizer's ONNX
# file from the installed rapidocr wheel (in a stub `rapidocr` package: only its file is used) and
# wheels (Python 3.12, no deps) of the packages the image lacks. Time: MINUTES (default 6) of
# training, about 2 more for cutting lines, reading the folds and packing: one 10-minute device call.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
GPU=$ROOT/.gpu_crossfit
MODE=${1:-run}
MINUTES=${MINUTES:-6}
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-42 7}
TAG=${TAG:-gpu30}
if [[ $MODE != run && -x $ROOT/.venv/bin/python ]]; then PYTHON=${PYTHON:-$ROOT/.venv/bin/python}; fi
PYTHON=${PYTHON:-python3}
# packages the GPU image lacks that the crossfit benchmark imports (checked by importing its modules
# with every other package of the CPU venv that the image lacks hidden); versions as in the CPU venv
WHEELS=(pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 rapidfuzz==3.14.6
        kedro==1.7.0 parse==1.22.4)

prepare() {
    local shared=${SHARED:-$ROOT/../shared/data/hsf_top}
    rm -rf "$GPU" && mkdir -p "$GPU/site/rapidocr/models" "$GPU/whl"
    cp -r "$shared/train" "$GPU/train"
    local onnx
    onnx=$(PYTHONPATH=$ROOT/src "$PYTHON" -c \
        "from handwriting_pipeline.fieldreader.graph import stock_onnx_path; print(stock_onnx_path())")
    cp "$onnx" "$GPU/site/rapidocr/models/"
    echo '"""Stub: only models/PP-OCRv6_rec_small.onnx of the rapidocr wheel is used (crossfit_gpu.sh)."""' \
        > "$GPU/site/rapidocr/__init__.py"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d "$GPU/whl" "${WHEELS[@]}" \
        || echo "WARNING: wheel download failed; run needs them"
    du -sh "$GPU"
}

run() {
    local train=${TRAIN_DIR:-$GPU/train} models=${MODELS:-data/06_models} results=${RESULTS:-benchmarks/results}
    if compgen -G "$GPU/whl/*.whl" > /dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$GPU"/whl/*.whl
    fi
    export PYTHONPATH=$ROOT/src:/tmp/site:$GPU/site${PYTHONPATH:+:$PYTHONPATH}
    "$PYTHON" -c "import torch, pytorch_lightning, kedro, rapidfuzz, pydantic
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    local started=$SECONDS
    # shellcheck disable=SC2086
    "$PYTHON" benchmarks/fieldreader/parallel_crossfit.py --seeds $SEEDS --tag "$TAG" --models "$models" \
        --results-dir "$results" ${JOBS:+--jobs $JOBS} ${FOLD_ARGS:-} -- --train-dir "$train" --epochs "$EPOCHS" \
        --max-minutes "$MINUTES" --patience 6 --accelerator "${ACCELERATOR:-gpu}" --precision 32-true ${EXTRA:-} \
        || echo "some folds failed (above); packing the complete ones"
    echo "folds: $((SECONDS - started)) s"
    local folders=()
    for seed in $SEEDS; do folders+=("$models/crossfit_${TAG}_s$seed"); done
    local out=${OUT:-/tmp/crossfit_gpu_out}
    mkdir -p "$out"
    "$PYTHON" benchmarks/fieldreader/pack_readers.py pack "${folders[@]}" --out "$out/readers"
    local logs=()
    for folder in "${folders[@]}"; do logs+=("$folder"/*.log); done
    tar czf "$out/results.tar.gz" "$results"/*"$TAG"* "${logs[@]}" || true
    echo "all: $((SECONDS - started)) s"; ls -la "$out"
}

case $MODE in
    prepare) prepare ;;
    run) run ;;
    check)  # CPU, 60 forms, 3 folds, 1 epoch: the whole run path in about two minutes (manual check)
        export TRAIN_DIR=${TRAIN_DIR:-$ROOT/../shared/data/hsf_top/train} MODELS=/tmp/crossfit_gpu_check/models
        export RESULTS=/tmp/crossfit_gpu_check/results OUT=/tmp/crossfit_gpu_check/out ACCELERATOR=cpu
        export EPOCHS=1 MINUTES=3 TAG=check FOLD_ARGS="--folds 3" EXTRA="--limit 60" JOBS=${JOBS:-2}
        rm -rf /tmp/crossfit_gpu_check && mkdir -p "$RESULTS"
        run ;;
    *) echo "usage: $0 prepare|run|check" >&2; exit 2 ;;
esac
