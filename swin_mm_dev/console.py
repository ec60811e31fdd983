"""What a tool run prints on the console: progress, metrics, and one line per choice the
tools made. The config dump, the environment, the hook table and the per-parameter
optimizer options still go to the run's log file in the work dir, in full.

Python warnings from OpenMMLab that a user of these configs can do nothing about are
silenced here, each with the reason; the other processes of a distributed run leave
warnings to process 0, which prints the same ones.
"""
import logging
import os
import re
import warnings

# mmengine log records kept out of the console (they stay in the log file).
_FILE_ONLY = (
    re.compile(r'\s*-+\s*System environment:'),     # the environment table
    re.compile(r'Config:\n'),                         # the whole config
    re.compile(r'Hooks will be executed in the following order'),
    re.compile(r'paramwise_options -- '),            # one line per parameter and option
    # mmengine's own deprecation notices about its file-client internals, which
    # mmseg/mmdet call (nothing in a config selects them).
    re.compile(r'"FileClient" will be deprecated'),
    re.compile(r'"HardDiskBackend" is the alias of "LocalBackend"'),
    re.compile(r'The prefix is not set in metric class'),
)

# mmdet's CocoMetric reports a model that detects nothing as an ERROR; the explanation
# the console gets instead (the run goes on and reports zero AP).
_EMPTY_RESULTS = re.compile(r'The testing results of the whole dataset is empty')
_EMPTY_EXPLAINED = ('no detections on the whole evaluation set (usual for an untrained or '
                    'briefly trained model): CocoMetric reports no AP for this evaluation')

# (message regex, module regex, why it is silenced)
_UPSTREAM_WARNINGS = (
    (r'``build_loss`` would be deprecated', r'mmseg\.',
     "mmseg's own decode heads call it"),
    (r'Default ``avg_non_ignore`` is False', r'mmseg\.',
     "the published recipes train with mmseg's default"),
    (r'The draw is False', r'mmseg\.',
     'visualisation is off on purpose in training runs'),
    (r'`reduce_zero_label` will be deprecated', r'mmseg\.',
     "ADE20K configs set it in LoadAnnotations as mmseg's own configs do"),
    (r'The shape of value will convert from', r'mmengine\.structures\.pixel_data',
     "mmseg's SegTTAModel storing 2-D maps in PixelData, which adds the channel axis"),
    (r'To copy construct from a tensor', r'mmdet\.models\.roi_heads\.mask_heads',
     "mmdet's mask head copying its own predictions at test time (harmless)"),
)


class ConsoleFilter(logging.Filter):
    """Keeps the records listed in ``_FILE_ONLY`` off a console handler; turns
    CocoMetric's empty-results ERROR into a warning that says why it happens."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(pattern.match(message) for pattern in _FILE_ONLY):
            return False
        if _EMPTY_RESULTS.search(message):
            record.msg, record.args = _EMPTY_EXPLAINED, ()
            record.levelno, record.levelname = logging.WARNING, 'WARNING'
        return True


def quiet_console(logger: logging.Logger) -> logging.Logger:
    """Add :class:`ConsoleFilter` to `logger`'s console handlers (not its file)."""
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler):
            handler.addFilter(ConsoleFilter())
    return logger


def quiet_warnings() -> None:
    """Silence the upstream warnings above; in processes other than 0, all of them."""
    if int(os.environ.get('RANK', '0')) > 0:
        warnings.simplefilter('ignore')
        return
    for message, module, _why in _UPSTREAM_WARNINGS:
        warnings.filterwarnings('ignore', message=message, module=module)
