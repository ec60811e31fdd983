"""What a finished mmengine run left in its work dir, for the demo reports."""
import json
from pathlib import Path
from typing import List


def newest_scalars(work_dir: Path) -> List[dict]:
    """The records of the newest run's ``<timestamp>/vis_data/scalars.json``, one per line."""
    runs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not runs:
        raise FileNotFoundError(f'expected <timestamp>/vis_data/scalars.json under {work_dir}, '
                                'found none (has training run?)')
    return [json.loads(line) for line in runs[-1].read_text().splitlines() if line]
