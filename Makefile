# Entry points for a fresh machine: `make demo` (the embedded training demo), `make test`
# (the quick test tier) and `make test-all` (every test). Each creates/refreshes its
# virtual environments first (idempotent; see tools/setup_env.sh).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
COMPAT_VENV ?= .venv-torch2.1
COMPAT_PYTHON := $(COMPAT_VENV)/bin/python
GOLDENS := work_dirs/goldens

.PHONY: setup setup-compat test test-all test-quick test-main test-compat demo benchmark

setup:
	VENV=$(VENV) tools/setup_env.sh main

setup-compat:
	VENV=$(COMPAT_VENV) tools/setup_env.sh compat

# Two tiers. `make test` (under 6 minutes on 2 cores after setup): every test except
# those marked slow (end-to-end Runner and tool runs, full-size models, the benchmark),
# on the main stack (torch 2.13), then the backbone, conversion and loading tests on
# torch 2.1.2 with mmcv built without ops, against what mmdet's SwinTransformer computes
# on the main stack in this same run, the Swin V2 known answers of the official code,
# and the ONNX export tests there. `make test-all` (what CI runs): the same with the
# slow tests too.
test: test-quick test-compat

test-all: test-main test-compat

test-quick: setup
	$(PYTHON) -m pytest -m "not slow"

test-main: setup
	$(PYTHON) -m pytest

test-compat: setup setup-compat
	$(PYTHON) tests/goldens.py $(GOLDENS)
	SWIN_MM_GOLDENS=$(GOLDENS) $(COMPAT_PYTHON) -m pytest -m "not slow" \
		tests/test_against_goldens.py tests/test_swin_v2_known_answers.py tests/test_export.py

# Swin-T vs mmdet 3.3's and timm's Swin: speed, memory, GFLOP/s (table + benchmark.json).
benchmark: setup
	$(PYTHON) tools/benchmark.py --arch T --sizes 224x224 227x301 512x512 800x1344 \
		--train-size 512x512 --with-timm --json benchmark.json

# Synthetic ADE20K-layout data -> UPerNet + SwinBackbone trained by tools/dist_train.sh on
# 2 processes (gloo without CUDA) -> mIoU (mmseg IoUMetric), curves.png, predictions.png
# in work_dirs/demo/ (recreated on every run). Then synthetic COCO-layout data -> Cascade
# Mask R-CNN + SwinBackbone, the same way -> box and mask AP (mmdet CocoMetric), single
# scale and multi-scale + flip (tools/dist_test.sh --tta), plots in work_dirs/demo/detection/.
DET_DEMO := configs/demo/cascade_mask_rcnn_swin_synthetic_coco.py
DET_DEMO_DIR := work_dirs/demo/detection
demo: setup
	rm -rf work_dirs/demo
	$(PYTHON) tools/make_synthetic_data.py ade20k work_dirs/demo/data \
		--num-train 300 --num-val 40 --size 64
	PYTHON=$(PYTHON) tools/dist_train.sh configs/demo/upernet_swin_synthetic_ade20k.py 2 \
		--work-dir work_dirs/demo
	$(PYTHON) tools/demo_report.py configs/demo/upernet_swin_synthetic_ade20k.py work_dirs/demo
	$(PYTHON) tools/make_synthetic_data.py coco work_dirs/demo/data/coco \
		--num-train 300 --num-val 40 --size 64
	PYTHON=$(PYTHON) tools/dist_train.sh $(DET_DEMO) 2 --work-dir $(DET_DEMO_DIR)
	PYTHON=$(PYTHON) tools/dist_test.sh $(DET_DEMO) "$$(cat $(DET_DEMO_DIR)/last_checkpoint)" 2 \
		--tta --work-dir $(DET_DEMO_DIR)/tta
	$(PYTHON) tools/det_demo_report.py $(DET_DEMO) $(DET_DEMO_DIR)
