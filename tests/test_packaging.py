"""Installing the plugin into an existing mmdet/mmseg environment replaces none of it.

pip's own resolver runs over this repository's real metadata (built as a wheel), for a
fresh virtual environment whose installed set is a user's stack. The stack's packages are present as
their distribution metadata only (what pip reads to decide what to install), and pip may
not reach any index: anything it wanted to install or replace would fail the dry run.
"""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = {'torch': '2.1.2', 'numpy': '1.26.4', 'mmengine': '0.10.7', 'mmcv': '2.1.0',
          'pycocotools': '2.0.7', 'ftfy': '6.1.1', 'regex': '2023.10.3'}
STACKS = {'mmdet 3.2 + mmseg 1.1': {**COMMON, 'mmdet': '3.2.0', 'mmsegmentation': '1.1.2'},
          'mmdet 3.3 + mmseg 1.2': {**COMMON, 'mmdet': '3.3.0', 'mmsegmentation': '1.2.2'}}


@pytest.fixture(scope='module')
def plugin_wheel(tmp_path_factory):
    """The plugin built as a wheel by this interpreter (the fresh venvs have no pip)."""
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '--disable-pip-version-check', '--quiet', '-w', str(out), REPO],
                   check=True, env={**_without_pip_settings(), 'PIP_CONFIG_FILE': os.devnull})
    wheel, = out.glob('swin_mm-*.whl')
    return wheel


@pytest.fixture
def venv(tmp_path):
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(tmp_path)], check=True)
    return tmp_path


def _install_metadata(venv, packages):
    """Write each package's .dist-info as pip would have left it after installing it."""
    purelib = sysconfig.get_path('purelib', vars={'base': str(venv), 'platbase': str(venv)})
    for name, version in packages.items():
        info = os.path.join(purelib, f'{name}-{version}.dist-info')
        os.makedirs(info, exist_ok=True)
        with open(os.path.join(info, 'METADATA'), 'w') as stream:
            stream.write(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
        for extra in ('INSTALLER', 'RECORD'):
            open(os.path.join(info, extra), 'w').close()


def _without_pip_settings():
    return {k: v for k, v in os.environ.items() if not k.startswith('PIP_')}


def _dry_run(venv, *requirements):
    report = venv / 'report.json'
    done = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', str(venv / 'bin' / 'python'),
         'install', '--dry-run', '--no-index',
         '--no-build-isolation', '--disable-pip-version-check', '--quiet',
         '--report', str(report), *requirements],
        capture_output=True, text=True,
        env={**_without_pip_settings(), 'PIP_CONFIG_FILE': os.devnull})
    installs = json.loads(report.read_text())['install'] if done.returncode == 0 else None
    return done, installs


@pytest.mark.slow
@pytest.mark.parametrize('stack', list(STACKS))
def test_plugin_installs_without_touching_the_stack(venv, plugin_wheel, stack):
    _install_metadata(venv, STACKS[stack])
    done, installs = _dry_run(venv, f'swin_mm[det,seg] @ {plugin_wheel.as_uri()}')
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    assert [item['metadata']['name'] for item in installs] == ['swin_mm']


@pytest.mark.slow
def test_the_check_sees_a_replacement(venv, plugin_wheel):
    """The same dry run fails when a requirement would replace an installed version."""
    _install_metadata(venv, STACKS['mmdet 3.2 + mmseg 1.1'])
    done, _ = _dry_run(venv, f'swin_mm[det,seg] @ {plugin_wheel.as_uri()}', 'mmdet==3.3.0')
    assert done.returncode != 0
    assert 'mmdet==3.3.0' in done.stderr


def test_wheel_ships_the_library_the_workbench_and_the_commands(plugin_wheel):
    import zipfile
    with zipfile.ZipFile(plugin_wheel) as wheel:
        names = wheel.namelist()
        entry_points, = [n for n in names if n.endswith('.dist-info/entry_points.txt')]
        console = wheel.read(entry_points).decode()
    assert {n.split('/')[0] for n in names if not n.split('/')[0].endswith('.dist-info')} == \
        {'swin_mm', 'swin_mm_dev'}
    assert 'swin2mm = swin_mm.commands.swin2mm:main' in console
    assert 'swin-mm-export = swin_mm.commands.export:main' in console
