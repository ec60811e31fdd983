"""tools/benchmark.py end to end on a shrunken architecture, and its input checks."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swin_mm import SwinBackbone
from swin_mm_dev.benchmark.machine import cpu_model
from swin_mm_dev.benchmark.models import parse_size

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_runs_end_to_end_and_writes_the_report(tmp_path):
    report_path = tmp_path / 'report.json'
    done = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'benchmark.py'), '--arch', 'T',
         '--depths', '2,1,1,1', '--sizes', '45x61', '224x224', '--train-size', '32x32',
         '--repeats', '2', '--warmup', '0', '--threads', '1', '--with-timm',
         '--json', str(report_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '| forward 45x61 b1 | ours |' in done.stdout
    report = json.loads(report_path.read_text())
    assert report['machine'].startswith(cpu_model()) and cpu_model() in done.stdout
    assert (report['device'], report['dtype']) == ('cpu', 'fp32')
    assert [case['case'] for case in report['cases']] == [
        'forward 45x61 b1', 'forward 224x224 b1', 'train 32x32 b2']
    odd, square, train = report['cases']
    # timm takes sides divisible by its patch size, with every stage at least one window.
    assert set(odd['impls']) == {'ours', 'mmdet'}
    assert 'divisible by 4 and at least 224' in odd['unsupported']['timm']
    assert '| forward 45x61 b1 | timm | unsupported: ' in done.stdout
    assert set(square['impls']) == {'ours', 'mmdet', 'timm'}
    # With one block in stages 2-4 no shifted block meets a map that fits one window,
    # where timm drops the shift: the same function, so the same weights must agree.
    assert square['impls']['timm']['max_abs_diff'] <= 1e-5
    assert set(train['impls']) == {'ours', 'mmdet', 'ours_cp'}
    assert 'got 32x32' in train['unsupported']['timm']
    for case in report['cases']:
        assert case['max_abs_diff'] <= 1e-5 and case['gflop'] > 0
        for stats in case['impls'].values():
            assert stats['runs'] == 2
            assert 0 < stats['min_ms'] <= stats['median_ms'] <= stats['max_ms']
            assert stats['gflops'] == pytest.approx(case['gflop'] / (stats['median_ms'] / 1e3))
            assert stats['fraction_of_peak'] == pytest.approx(
                stats['gflops'] / report['matmul_peak_gflops'])
            assert stats['method'] == 'VmHWM after clear_refs'
    # The probe's baseline is taken after a warm-up step, so the process then holds every
    # weight and its gradient; the step itself adds its activations on top.
    model = SwinBackbone(embed_dims=96, depths=(2, 1, 1, 1), num_heads=(3, 6, 12, 24))
    parameters_mib = sum(p.numel() * 4 for p in model.parameters()) / 2 ** 20
    for stats in train['impls'].values():
        assert stats['baseline_mib'] >= 2 * parameters_mib and stats['peak_mib'] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message without a GPU')
def test_cuda_without_a_gpu_is_a_one_line_error():
    done = subprocess.run([sys.executable, str(REPO / 'tools' / 'benchmark.py'),
                           '--device', 'cuda'], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        f'expected a CUDA device, found none (torch {torch.__version__}, CUDA build: '
        f'{torch.version.cuda})')


@pytest.mark.parametrize('text', ['512', '512x', 'axb', '0x5'])
def test_bad_size_is_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match='512x512|positive'):
        parse_size(text)


@pytest.mark.slow
def test_v2_benchmark_runs_end_to_end_with_both_peers(tmp_path):
    """SwinV2-T against mmpretrain's and timm's V2 with the same weights: mmpretrain is
    the same function at every size; timm (padding after the roll, timm#2438) only where
    every stage map is a window multiple (256x256 at window 8, not 200x336)."""
    report_path = tmp_path / 'report.json'
    done = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'benchmark_v2.py'), '--sizes', '256x256',
         '200x336', '--train-size', '64x64', '--repeats', '1', '--json', str(report_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report['machine'].startswith(cpu_model()) and cpu_model() in done.stdout
    square, odd, train = report['rows']
    assert max(square['max_abs_diff'].values()) <= 1e-4
    assert odd['max_abs_diff']['mmpretrain'] <= 1e-4 < odd['max_abs_diff']['timm']
    assert 'timm' in done.stdout.splitlines()[1] and 'not the same function' in done.stdout
    assert set(train['memory']) == {'swin_mm', 'mmpretrain', 'timm'}
    for row in report['rows']:
        assert all(stats['runs'] == 1 and stats['median_ms'] > 0
                   for stats in row['times'].values())
