#!/usr/bin/env bash
# Training benchmark: Tessera (1 server x 1 worker and 2 x 2, end to end:
# parse + communication + compute) next to the PyTorch reference
# (../shared/bench/torch_ctr.py, training loop only), on the same generated
# files, in the same run. Prints one line per run and a summary table.
#
# Usage: bench/train_vs_torch.sh [ROWS] [MODELS]   (defaults: 843000 "lr deepfm")
#   e.g. bench/train_vs_torch.sh 843000 "deepfm din bst"  (the sequence models;
#   the reference has no bst, so bst is compared with its din)
# Needs: build/tools/tessera; for the reference, Debian's python3-torch,
# python3-numpy, python3-sklearn, python3-yaml, libopenblas0-pthread.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-843000}
MODELS=${2:-lr deepfm}
TESSERA=${TESSERA:-build/tools/tessera}
TORCH=${TORCH_CTR:-../shared/bench/torch_ctr.py}
OUT=runs/bench-train
DATA=$OUT/data
mkdir -p "$OUT"
# Regenerated every run (about a second): the data always matches the
# generator of this build.
"$TESSERA" gen --out "$DATA" --rows "$ROWS" --seed 1
declare -A LR=([lr]=0.2 [fm]=0.05 [deepfm]=0.05 [din]=0.05 [bst]=0.05)
results=()
for model in $MODELS; do
  for layout in "1 1" "2 2"; do
    set -- $layout
    job=$OUT/$model-$1x$2.yaml
    cat > "$job" <<YAML
data: {schema: data/schema.yaml, train: data/train.tsv, eval: data/test.tsv}
model: {type: $model, embedding_dim: 16, hidden: [256, 128]}
optimizer: {sparse: {type: adagrad, lr: ${LR[$model]}}, dense: {type: adam, lr: 0.001}}
train: {batch_size: 1024, epochs: 1}
cluster: {servers: $1, workers: $2}
output_dir: $model-$1x$2
YAML
    "$TESSERA" train "$job" > "$OUT/$model-$1x$2.log" 2>&1
    auc=$(sed -n 's/.*"auc": \([0-9.]*\).*/\1/p' "$OUT/$model-$1x$2/eval.json")
    sps=$(sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' "$OUT/$model-$1x$2/train.json")
    results+=("tessera $model ${1}x${2}: auc $auc, samples/s $sps (end to end)")
    echo "${results[-1]}"
  done
  if [ "$model" = bst ]; then
    results+=("pytorch bst: no reference model (compare with din)")
  elif /usr/bin/python3 -c "import torch" 2>/dev/null; then
    line=$(/usr/bin/python3 "$TORCH" --model "$model" --schema "$DATA/schema.yaml" \
      --train "$DATA/train.tsv" --test "$DATA/test.tsv" --threads 2 2>/dev/null | tail -1)
    auc=$(echo "$line" | sed -n 's/.*"auc": \([0-9.]*\).*/\1/p')
    sps=$(echo "$line" | sed -n 's/.*"train_samples_per_s": \([0-9.]*\).*/\1/p')
    results+=("pytorch $model (2 threads): auc $auc, samples/s $sps (training loop only)")
    echo "${results[-1]}"
  else
    results+=("pytorch $model: not run (python3-torch missing)")
  fi
done
echo
echo "# bench/train_vs_torch.sh $ROWS rows"
printf '%s\n' "${results[@]}"
