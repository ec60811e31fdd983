"""Data order and augmentation as functions of the position in the run, not its history.

- :class:`ResumableSampler` yields each process's share of a seeded permutation per pass
  over the data (one pass per epoch, or passes back to back for iteration-based
  training), and starts where it is told: positioning it costs no data loading.
- :class:`ResumableBatchSampler` groups those indices into batches (itself, or through
  the config's batch sampler such as mmdet's ``AspectRatioBatchSampler``) and skips the
  batches a resumed run has already trained on in index space, before any is loaded.
- :class:`SampleSeededDataset` seeds the random generators for each sample's pipeline
  from (seed, pass, index), which the sampler attaches to every index: a sample draws
  the same augmentation whichever dataloader worker loads it, and whenever.
"""
import itertools
import math
from typing import Iterator, List, Optional

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import BatchSampler, Sampler

from .random_state import sample_seed, seeded_rng


class SampleIndex(int):
    """A dataset index that also says which pass over the data it belongs to and the
    sampler's seed: what its sample's augmentation is seeded from."""

    def __new__(cls, index: int, seed: int, pass_index: int):
        value = super().__new__(cls, index)
        value.seed, value.pass_index = seed, pass_index
        return value

    def __reduce__(self):  # to dataloader workers, with its pass and seed
        return SampleIndex, (int(self), self.seed, self.pass_index)

    @property
    def sample_seed(self) -> int:
        return sample_seed(self.seed, self.pass_index, int(self))


@DATA_SAMPLERS.register_module()
class ResumableSampler(Sampler):
    """Seeded shuffling like mmengine's DefaultSampler/InfiniteSampler, positionable.

    Args:
        dataset: The dataset (only its length is used).
        shuffle (bool): Shuffle each pass with a generator seeded by ``seed + pass``;
            otherwise 0, 1, 2, ... Defaults to True.
        seed (int, optional): Base seed, the same on every process (mmengine's Runner
            passes its seed). None: one random seed shared by the processes.
        infinite (bool): Yield passes back to back without end (iteration-based
            training); otherwise one pass, the one set by :meth:`set_epoch`.
            Defaults to False.
        round_up (bool): Repeat indices so every process gets as many (always so when
            ``infinite``, so that positions stay in step). Defaults to True.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 infinite: bool = False, round_up: bool = True) -> None:
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.infinite = infinite
        self.round_up = round_up or infinite
        if self.round_up:
            self.num_samples = math.ceil(len(dataset) / self.world_size)
        else:
            self.num_samples = math.ceil((len(dataset) - self.rank) / self.world_size)
        self.epoch = 0
        self._start = 0

    def pass_indices(self, pass_index: int) -> List[int]:
        """This process's indices in pass `pass_index`."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + pass_index)
            indices = torch.randperm(len(self.dataset), generator=generator).tolist()
        else:
            indices = list(range(len(self.dataset)))
        if self.round_up:
            total = self.num_samples * self.world_size
            indices = (indices * math.ceil(total / len(indices)))[:total]
        return indices[self.rank::self.world_size]

    def start_at(self, position: int) -> None:
        """Make the next iteration begin at this process's `position`-th index (within
        the epoch, or from the start of training when infinite)."""
        self._start = position

    def __iter__(self) -> Iterator[SampleIndex]:
        position, self._start = self._start, 0
        if not self.infinite:
            yield from self._tagged(self.epoch, position)
            return
        for pass_index in itertools.count(position // self.num_samples):
            yield from self._tagged(pass_index, position % self.num_samples)
            position = 0

    def _tagged(self, pass_index: int, offset: int) -> Iterator[SampleIndex]:
        for index in self.pass_indices(pass_index)[offset:]:
            yield SampleIndex(index, self.seed, pass_index)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


@DATA_SAMPLERS.register_module()
class ResumableBatchSampler(Sampler):
    """Batches from a :class:`ResumableSampler` that can begin at any batch for free.

    Args:
        sampler (ResumableSampler): Where the indices come from.
        batch_size (int): Samples per batch.
        batch_sampler (dict, optional): A batch sampler config to group the indices
            (e.g. ``dict(type='AspectRatioBatchSampler')``); skipped batches are then
            formed in index space and dropped. None: consecutive indices, and skipping
            moves the sampler straight to its position.
        drop_last (bool): Without ``batch_sampler``, drop a last incomplete batch.
            Defaults to False.
    """

    def __init__(self, sampler: ResumableSampler, batch_size: int,
                 batch_sampler: Optional[dict] = None, drop_last: bool = False) -> None:
        if not isinstance(sampler, ResumableSampler):
            raise TypeError(f'expected a ResumableSampler, found {type(sampler).__name__}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.inner = None if batch_sampler is None else DATA_SAMPLERS.build(
            batch_sampler, default_args=dict(sampler=sampler, batch_size=batch_size))
        self._start = 0

    def start_at(self, batches: int) -> None:
        """Make the next iteration skip `batches` batches without loading them."""
        self._start = batches

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[List[SampleIndex]]:
        start, self._start = self._start, 0
        if self.inner is not None:
            yield from itertools.islice(self.inner, start, None)
            return
        self.sampler.start_at(start * self.batch_size)
        yield from BatchSampler(self.sampler, self.batch_size, self.drop_last)

    def __len__(self) -> int:
        if self.inner is not None:
            return len(self.inner)
        return len(BatchSampler(self.sampler, self.batch_size, self.drop_last))


@DATASETS.register_module()
class SampleSeededDataset:
    """A dataset whose samples, fetched with a :class:`SampleIndex`, are augmented with
    the generators seeded from that index; everything else is the wrapped dataset's.

    Args:
        dataset (dict or Dataset): The dataset (a config is built).
    """

    def __init__(self, dataset) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset

    def __getitem__(self, index):
        if not isinstance(index, SampleIndex):
            return self.dataset[index]
        with seeded_rng(index.sample_seed):
            return self.dataset[int(index)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # metainfo, get_data_info, full_init, pipeline, ...
        if name == 'dataset' or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)
