#!/usr/bin/env bash
# GPU recipe for Donut (issue #14): on one H100/H200, train the donut_swin `base` preset from config
# (synthetic pretraining, then the real train split), then the text_lines variant (the field
# reader's pretrained backbone under the `base` MBart decoder), and write validation FLA/CBA and
# forms/s to benchmarks/results/donut_gpu_{swin_base,text_lines}.{json,md} (and $OUT when set).
#
#   bash benchmarks/donut/donut_gpu.sh prepare   # here, on the CPU host: gathers what travels into .gpu/
#   bash benchmarks/donut/donut_gpu.sh run       # on the GPU machine (device tool: carry [".gpu"])
#   bash benchmarks/donut/donut_gpu.sh check     # here: the whole `run` path on CPU with tiny presets
#
# The GPU machine starts bare and cannot reach the internet; its image has Python 3.12 with torch,
# transformers, pytorch-lightning, onnx, onnxruntime, opencv, pandas. `prepare` therefore puts into
# .gpu/ (ignored by git, ~40 MB): the shared crops (train + validation), the PP-OCRv6 recognizer's
# ONNX file from the installed rapidocr wheel (in a stub `rapidocr` package: only its file is used),
# the fine-tuned field reader's weights when one exists, and wheels (Python 3.12, no deps) of the
# packages the image lacks. `run` installs those wheels into /tmp/site and never touches torch.
#
# Time: SWIN_MINUTES (default 5.5) + LINES_MINUTES (default 1.5) of training plus model building,
# validation and inference: about 9 minutes of wall time for both, inside one 10-minute device call.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU=$ROOT/.gpu
MODE=${1:-run}
SWIN_MINUTES=${SWIN_MINUTES:-5.5}
LINES_MINUTES=${LINES_MINUTES:-1.5}
SYNTHETIC=${SYNTHETIC:-20000}
WORKERS=${WORKERS:-12}
RESULTS=${RESULTS:-benchmarks/results}
if [[ $MODE != run && -x $ROOT/.venv/bin/python ]]; then PYTHON=${PYTHON:-$ROOT/.venv/bin/python}; fi
PYTHON=${PYTHON:-python3}
# packages the GPU image lacks that the benchmark imports (found with `python -X importtime` on the
# benchmark's modules, checked against the device tool's list of the image); versions as in the CPU venv
WHEELS=(kedro==1.7.0 rapidfuzz==3.14.6 nltk==3.10.4 dill==0.4.1 parse==1.22.4 more-itertools==11.2.1
        defusedxml==0.7.1 truststore==0.10.5)

prepare() {
    local shared=${SHARED:-$ROOT/../shared/data/hsf_top}
    local reader=${FIELDREADER_DIR:-$ROOT/../main/data/06_models/benchmark_fieldreader}
    rm -rf "$GPU" && mkdir -p "$GPU/data" "$GPU/site/rapidocr/models" "$GPU/whl"
    cp -r "$shared/train" "$shared/validation" "$GPU/data/"
    local onnx
    onnx=$(PYTHONPATH=$ROOT/src "$PYTHON" -c \
        "from handwriting_pipeline.fieldreader.graph import stock_onnx_path; print(stock_onnx_path())")
    cp "$onnx" "$GPU/site/rapidocr/models/"
    echo '"""Stub: only models/PP-OCRv6_rec_small.onnx of the rapidocr wheel is used (donut_gpu.sh)."""' \
        > "$GPU/site/rapidocr/__init__.py"
    if [[ -f $reader/weights.pt && -f $reader/fieldreader.json ]]; then
        mkdir -p "$GPU/fieldreader" && cp "$reader/weights.pt" "$reader/fieldreader.json" "$GPU/fieldreader/"
    fi
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$GPU/whl" "${WHEELS[@]}" || echo "WARNING: wheel download failed; run needs them"
    du -sh "$GPU"
}

bench() {  # name, extra args...
    local name=$1; shift
    PYTHONUNBUFFERED=1 "$PYTHON" benchmarks/donut/donut_benchmark.py --results "$RESULTS/$name" \
        --out "data/06_models/$name" --checkpoint-dir "data/06_models/${name}_checkpoints" \
        --train-dir "$DATA/train" --val-dir "$DATA/validation" --joint-weights 0,1 "$@"
    if [[ -n ${OUT:-} ]]; then cp "$RESULTS/$name".{json,md} "$OUT/" || true; fi
}

run() {
    DATA=${DATA:-$GPU/data}
    if [[ -d $GPU/whl ]] && compgen -G "$GPU/whl/*.whl" > /dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$GPU"/whl/*.whl
    fi
    export PYTHONPATH=$ROOT/src:/tmp/site:$GPU/site${PYTHONPATH:+:$PYTHONPATH}
    "$PYTHON" -c "import torch, transformers, pytorch_lightning, kedro, rapidfuzz, cv2, onnx
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    local reader=()
    [[ -d $GPU/fieldreader ]] && reader=(--fieldreader-dir "$GPU/fieldreader")
    local started=$SECONDS
    bench donut_gpu_swin_base --encoder donut_swin --preset "${SWIN_PRESET:-base}" --max-minutes "$SWIN_MINUTES" \
        --pretrain-share 0.45 --synthetic-forms "$SYNTHETIC" --batch-size 32 --pretrain-lr 5e-4 --finetune-lr 3e-4 \
        --patience 6 --pretrain-val-every 200 --num-workers "$WORKERS" --threads 8 --infer-batch-size 64 \
        --tag "${TAG:-GPU recipe (benchmarks/donut/donut_gpu.sh)}" ${EXTRA_SWIN:-}
    echo "donut_swin: $((SECONDS - started)) s"
    started=$SECONDS
    bench donut_gpu_text_lines --encoder text_lines --preset "${LINES_PRESET:-base}" "${reader[@]}" \
        --max-minutes "$LINES_MINUTES" --synthetic-forms 0 --batch-size 32 --finetune-lr 3e-4 --finetune-epochs 30 \
        --freeze-steps 100 --patience 6 --num-workers "$WORKERS" --threads 8 --infer-batch-size 64 \
        --tag "${TAG:-GPU recipe (benchmarks/donut/donut_gpu.sh)}" ${EXTRA_LINES:-}
    echo "text_lines: $((SECONDS - started)) s"
}

case $MODE in
    prepare) prepare ;;
    run) run ;;
    check)  # CPU, tiny presets, a few forms: the whole run path in about two minutes (manual check)
        export DATA=${DATA:-$ROOT/../shared/data/hsf_top} SWIN_PRESET=tiny LINES_PRESET=lines_tiny SYNTHETIC=16 WORKERS=0
        export SWIN_MINUTES=0.3 LINES_MINUTES=0.3 TAG="CPU check of the GPU recipe (tiny presets)"
        export RESULTS=${RESULTS_CHECK:-/tmp/donut_gpu_check}
        export EXTRA_SWIN="--limit-train 16 --limit-val 8 --holdout 8 --finetune-epochs 1 --threads 1 --infer-batch-size 8"
        export EXTRA_LINES="--limit-train 16 --limit-val 8 --holdout 8 --finetune-epochs 1 --threads 1 --infer-batch-size 8"
        run ;;
    *) echo "usage: $0 prepare|run|check" >&2; exit 2 ;;
esac
