#!/usr/bin/env bash
# The competition recipe: 5-fold models, hflip TTA, soft voting; runs on artkit's demo data offline.
set -euo pipefail
DATA=${1:-demo/data}
[ -d "$DATA" ] || python -c "from artkit.data.synthetic import make_demo_dataset; make_demo_dataset('$DATA')"
artkit eda "$DATA" --out eda/
artkit clean "$DATA" --out clean/
NAME=kfold-$(date +%Y%m%d-%H%M%S)
artkit train "$DATA" --train-csv clean/train_clean.csv --model resnet10t --no-pretrained --img-size 64 \
  --aug crop --epochs 4 --folds 5 --name "$NAME" --lr 0.002 --batch-size 16
artkit clean "$DATA" --out clean/ --oof "runs/$NAME/oof.csv"
artkit ensemble "runs/$NAME" --data "$DATA" --tta hflip -o submission.csv
