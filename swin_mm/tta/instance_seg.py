"""Multi-scale + flip testing of two-stage instance segmentation, masks merged too.

mmdet 3.3's ``DetTTAModel`` merges boxes only and refuses predictions that carry masks.
``InstanceSegTTAModel`` merges both, as mmdet 2.x's ``aug_test`` of HTC did (the test the
official Swin detection fork ran):

1. every view (one resize, maybe mirrored) runs the backbone, RPN and box head; its
   per-class box candidates, before any NMS, are mapped into one frame;
2. the candidates of all views go through the detector's own ``multiclass_nms`` once
   (score threshold, NMS or soft-NMS, ``max_per_img`` of its ``test_cfg.rcnn``);
3. the mask branch runs again on the merged boxes mapped into every view; each view's
   RoI mask probabilities are mirrored back where the view was mirrored and averaged;
4. the averaged RoI masks are pasted onto the original image by the mask head.

Candidates are merged in the first view's frame and mapped to the original image after
NMS, so a single un-flipped view reproduces the detector's own predictions bit for bit.
Detectors without a mask branch take mmdet's ``DetTTAModel`` path unchanged.
"""
from typing import List, Optional

import torch
from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads import (CascadeRoIHead, HybridTaskCascadeRoIHead,
                                    StandardRoIHead)
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .view_geometry import boxes_to_original, boxes_to_view, roi_masks_to_original

MERGE_KEYS = ('score_thr', 'nms', 'max_per_img')


def roi_mask_probabilities(roi_head, feats, rois: Tensor,
                           semantic_feat: Optional[Tensor]) -> Tensor:
    """(n, classes, h, w) mask probabilities of ``rois``, computed as the head's own
    ``predict_mask`` computes them before pasting (cascades average their stages)."""
    if isinstance(roi_head, HybridTaskCascadeRoIHead):
        preds = roi_head._mask_forward(stage=-1, x=feats, rois=rois,
                                       semantic_feat=semantic_feat,
                                       training=False)['mask_preds']
    elif isinstance(roi_head, CascadeRoIHead):
        preds = [roi_head._mask_forward(stage, feats, rois)['mask_preds']
                 for stage in range(roi_head.num_stages)]
    elif isinstance(roi_head, StandardRoIHead):
        return roi_head._mask_forward(feats, rois)['mask_preds'].sigmoid()
    else:
        raise TypeError(f'InstanceSegTTAModel expected a StandardRoIHead, CascadeRoIHead or '
                        f'HybridTaskCascadeRoIHead, found {type(roi_head).__name__}')
    return torch.stack([pred.sigmoid() for pred in preds]).mean(dim=0)


def _last(head: nn.Module) -> nn.Module:
    return head[-1] if isinstance(head, nn.ModuleList) else head


@MODELS.register_module()
class InstanceSegTTAModel(DetTTAModel):
    """Test-time augmentation that merges boxes and masks of two-stage detectors.

    Works with Mask R-CNN (``StandardRoIHead``), Cascade Mask R-CNN (``CascadeRoIHead``)
    and HTC (``HybridTaskCascadeRoIHead``, semantic branch included). Views come from
    ``TestTimeAug`` in the config's ``tta_pipeline``; their metainfo must carry
    ``scale_factor``, ``img_shape``, ``flip`` and ``flip_direction``.

    Args:
        module (dict or nn.Module): the detector.
        tta_cfg (dict, optional): overrides of ``score_thr``, ``nms`` and ``max_per_img``
            for the merge. Defaults to None: the detector's ``test_cfg.rcnn`` values,
            which a single view then reproduces exactly. Detectors without a mask branch
            go through ``DetTTAModel`` with ``nms`` and ``max_per_img`` from here.
        data_preprocessor (dict or nn.Module, optional): as for mmengine's
            ``BaseTTAModel`` (the detector's own preprocessor runs on every view).
    """

    def __init__(self, module, tta_cfg: Optional[dict] = None, data_preprocessor=None):
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        unknown = set(tta_cfg or {}) - set(MERGE_KEYS)
        if unknown:
            raise ValueError(f'expected tta_cfg keys among {MERGE_KEYS}, found {sorted(unknown)}')
        rcnn_cfg = getattr(getattr(self.module, 'roi_head', None), 'test_cfg', None) or {}
        merged = {key: rcnn_cfg[key] for key in MERGE_KEYS if key in rcnn_cfg}
        merged.update(tta_cfg or {})
        missing = [key for key in MERGE_KEYS[1:] if key not in merged]
        if missing:
            raise ValueError(f'expected {" and ".join(missing)} in tta_cfg or the detector\'s '
                             f'test_cfg.rcnn, found neither')
        self.tta_cfg = ConfigDict(merged)

    def test_step(self, data):
        if not self.module.with_mask:
            return super().test_step(data)
        views = [self._view_predictions(view) for view in _split_views(data)]
        merged = [self._merge_boxes(views, image) for image in range(len(views[0]['metas']))]
        self._add_masks(views, merged)
        results = []
        for image, instances in enumerate(merged):
            sample = views[0]['samples'][image]
            sample.pred_instances = instances
            results.append(sample)
        return results

    def _view_predictions(self, data) -> dict:
        """Features and per-class box candidates (no NMS) of one view's batch."""
        detector = self.module
        roi_head = detector.roi_head
        batch = detector.data_preprocessor(data, False)
        samples = batch['data_samples']
        metas = [sample.metainfo for sample in samples]
        feats = detector.extract_feat(batch['inputs'])
        proposals = detector.rpn_head.predict(feats, samples, rescale=False)
        extra = {}
        if getattr(roi_head, 'with_semantic', False):
            extra['semantic_feat'] = roi_head.semantic_head(feats)[1]
        candidates = roi_head.predict_bbox(feats, batch_img_metas=metas,
                                           rpn_results_list=proposals, rcnn_test_cfg=None,
                                           rescale=False, **extra)
        return dict(feats=feats, samples=samples, metas=metas, candidates=candidates,
                    semantic_feat=extra.get('semantic_feat'))

    def _merge_boxes(self, views: List[dict], image: int) -> InstanceData:
        """One image's candidates of every view, in the first view's frame, through the
        detector's multiclass NMS; ``bboxes`` in the original image, ``frame_bboxes``
        in the first view."""
        frame_meta = views[0]['metas'][image]
        boxes, scores = [], []
        for index, view in enumerate(views):
            candidates = view['candidates'][image]
            view_boxes = candidates.bboxes
            if index:  # the first view's own boxes stay untouched (bit-exact single view)
                shape = view_boxes.shape
                view_boxes = view_boxes.reshape(shape[0], -1, 4)
                view_boxes = boxes_to_view(
                    boxes_to_original(view_boxes, view['metas'][image]), frame_meta)
                view_boxes = view_boxes.reshape(shape)
            boxes.append(view_boxes)
            scores.append(candidates.scores)
        cfg = self.tta_cfg
        dets, labels = multiclass_nms(torch.cat(boxes), torch.cat(scores), cfg.score_thr,
                                      cfg.nms, cfg.max_per_img)
        frame_boxes = dets[:, :4]
        return InstanceData(bboxes=boxes_to_original(frame_boxes, frame_meta),
                            scores=dets[:, 4], labels=labels, frame_bboxes=frame_boxes)

    def _add_masks(self, views: List[dict], merged: List[InstanceData]) -> None:
        """Re-run the mask branch on the merged boxes in every view, average the RoI
        probabilities, paste them onto each original image."""
        roi_head = self.module.roi_head
        counts = [len(instances) for instances in merged]
        probabilities = []
        if sum(counts):
            for index, view in enumerate(views):
                view_boxes = [
                    instances.frame_bboxes if index == 0 else
                    boxes_to_view(instances.bboxes, meta)
                    for instances, meta in zip(merged, view['metas'])]
                maps = roi_mask_probabilities(roi_head, view['feats'], bbox2roi(view_boxes),
                                              view['semantic_feat'])
                probabilities.append([
                    roi_masks_to_original(part, meta)
                    for part, meta in zip(maps.split(counts), view['metas'])])
        mask_head = _last(roi_head.mask_head)
        test_cfg = roi_head.test_cfg
        for image, instances in enumerate(merged):
            del instances.frame_bboxes
            meta = dict(ori_shape=views[0]['metas'][image]['ori_shape'], scale_factor=(1., 1.))
            if counts[image]:
                mean = torch.stack([view[image] for view in probabilities]).mean(dim=0)
            else:
                mean = instances.bboxes.new_zeros((0, 1, 1, 1))
            pasted = InstanceData(bboxes=instances.bboxes.clone(), labels=instances.labels)
            pasted = mask_head.predict_by_feat(
                mask_preds=[mean], results_list=[pasted], batch_img_metas=[meta],
                rcnn_test_cfg=test_cfg, rescale=True, activate_map=True)[0]
            instances.masks = pasted.masks


def _split_views(data) -> list:
    """mmengine's ``TestTimeAug`` batch (each field a list over views) -> one batch per view."""
    if isinstance(data, dict):
        count = len(data[next(iter(data))])
        return [{key: value[index] for key, value in data.items()} for index in range(count)]
    if isinstance(data, (list, tuple)):
        return [[field[index] for field in data] for index in range(len(data[0]))]
    raise TypeError(f'expected the dataloader to give a dict, tuple or list, '
                    f'found {type(data).__name__}')
