#!/usr/bin/env bash
# Digitize throughput: N synthetic full pages, local pool (2 workers) vs a 2-worker Dask
# LocalCluster, each with an empty engine cache; peak memory (GNU time); resume after kill -9.
# Usage: PYTHONPATH=$PWD/src bash benchmarks/digitize_benchmark.sh [N]
set -u
N=${1:-100}
DIR=/tmp/digitize_bench_$N
K=".venv/bin/kedro"
export OMP_NUM_THREADS=1 COLUMNS=250
[ -d $DIR/in ] || .venv/bin/python -m handwriting_pipeline.digitize.demo $DIR/in $N --seed 5 --workers 2
run() {  # name, extra params
  rm -rf $DIR/cache_$1
  /usr/bin/time -f "$1: wall %e s, peak RSS %M KB (main process)" $K run --pipeline digitize \
    --params "digitize.input_dir=$DIR/in,digitize.progress=false,digitize.workers=2,digitize.partition_size=64$2" 2>&1 \
    | grep -E "forms/s|peak RSS|need review" | tr -s ' '
}
# each run gets its own cache folder through digitize.dask.cache_dir / a temporary conf copy is overkill:
# the extract_cache is cleared before each run instead
rm -rf data/02_intermediate/extract_cache; run local ""
rm -rf data/02_intermediate/extract_cache; run dask ",digitize.dask.n_workers=2"
# resume: kill -9 after ~20 s, rerun, count how many forms the rerun had to read
rm -rf data/02_intermediate/extract_cache
$K run --pipeline digitize --params "digitize.input_dir=$DIR/in,digitize.progress=false,digitize.workers=2,digitize.partition_size=16" >/dev/null 2>&1 &
PID=$!; sleep 45; pkill -9 -P $PID 2>/dev/null; kill -9 $PID; wait $PID 2>/dev/null
echo "cached after kill -9: $(find data/02_intermediate/extract_cache -name '*.json' | wc -l) answers"
$K run --pipeline digitize --params "digitize.input_dir=$DIR/in,digitize.progress=false,digitize.workers=2,digitize.partition_size=16" 2>&1 \
  | grep -E "from cache|forms/s" | tr -s ' ' | awk '{print}' | tail -8
echo "cached after rerun: $(find data/02_intermediate/extract_cache -name '*.json' | wc -l) answers"
