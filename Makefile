# Two entry points for a fresh machine: `make demo` (the embedded training demo) and
# `make test` (the whole test suite). Both create/refresh .venv first (idempotent).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup test demo benchmark

setup:
	VENV=$(VENV) tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest

# Synthetic ADE20K-layout data -> UPerNet + SwinBackbone trained by tools/dist_train.sh on
# 2 processes (gloo without CUDA) -> mIoU (mmseg IoUMetric), curves.png, predictions.png
# in work_dirs/demo/ (recreated on every run).
# Swin-T vs mmdet 3.3's and timm's Swin: speed, memory, GFLOP/s (table + benchmark.json).
benchmark: setup
	$(PYTHON) tools/benchmark.py --arch T --sizes 224x224 227x301 512x512 800x1344 \
		--train-size 512x512 --with-timm --json benchmark.json

demo: setup
	rm -rf work_dirs/demo
	$(PYTHON) tools/make_synthetic_data.py ade20k work_dirs/demo/data \
		--num-train 300 --num-val 40 --size 64
	PYTHON=$(PYTHON) tools/dist_train.sh configs/demo/upernet_swin_synthetic_ade20k.py 2 \
		--work-dir work_dirs/demo
	$(PYTHON) tools/demo_report.py configs/demo/upernet_swin_synthetic_ade20k.py work_dirs/demo \
		--class-names background circle square triangle striped_hexagon
