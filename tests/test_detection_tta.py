"""swin_mm.tta.InstanceSegTTAModel: boxes and masks merged over test-time views.

Real mmdet detectors built from the recipe configs (shrunk as the recipe runs shrink
them: small SwinBackbone, narrow heads, 1/8 image scales, every detection scored), real
pipelines on
the synthetic COCO data, mmcv's RoIAlign and mmdet's mask pasting.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.ops import RoIAlign
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from swin_mm_dev.synthetic import write_coco
from test_recipe_configs_run import shrink_for_cpu

REPO = Path(__file__).resolve().parents[1]
SIZE = 61  # odd, and not a multiple of the preprocessor's 32-pixel padding
DETECTORS = ['mask_rcnn_swin_t_coco_3x', 'cascade_mask_rcnn_swin_t_coco_3x', 'htcpp_swin_b_coco']
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction')


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp('tta') / 'coco', num_train=1, num_val=2, size=SIZE)


def load_shrunk(name):
    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    shrink_for_cpu(cfg)
    cfg.model.backbone.init_cfg = None
    return cfg


def detector_and_tta(name, proposals=20):
    """The shrunk recipe detector (random weights, eval mode) and the config's TTA model
    around it."""
    import swin_mm.tta  # noqa: F401  (registers InstanceSegTTAModel)
    from mmdet.registry import MODELS
    cfg = load_shrunk(name)
    cfg.model.test_cfg.rpn.max_per_img = proposals
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
        tta = MODELS.build(dict(cfg.tta_model, module=detector)).eval()
    return detector, tta


def pipeline(transforms):
    from mmcv.transforms import Compose
    from mmdet.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Compose([TRANSFORMS.build(t) for t in transforms])


def view_batch(image, views):
    """The batch mmengine's TestTimeAug + pseudo_collate make of one image: each view a
    (Resize scale, horizontal flip or not) pair."""
    packed = [pipeline([dict(type='Resize', scale=scale, keep_ratio=True),
                        dict(type='RandomFlip', prob=float(flip), direction='horizontal'),
                        dict(type='PackDetInputs', meta_keys=META_KEYS)])(_inputs(image))
              for scale, flip in views]
    return pseudo_collate([dict(inputs=[p['inputs'] for p in packed],
                                data_samples=[p['data_samples'] for p in packed])])


def _inputs(image):
    return dict(img=image.copy(), img_id=0, img_path='', ori_shape=image.shape[:2],
                img_shape=image.shape[:2])


def single_scale(detector, image, scale):
    """The detector's own test_step on the recipe's single-scale test transforms."""
    data = pipeline([dict(type='Resize', scale=scale, keep_ratio=True),
                     dict(type='PackDetInputs', meta_keys=META_KEYS[:5])])(_inputs(image))
    with torch.no_grad():
        return detector.test_step(pseudo_collate([data]))[0].pred_instances


def tta_predict(tta, image, views):
    with torch.no_grad():
        return tta.test_step(view_batch(image, views))[0].pred_instances


def _image(coco, index=1):
    return cv2.imread(str(sorted((coco / 'val2017').glob('*.jpg'))[index]))


@pytest.mark.parametrize('name', DETECTORS)
def test_one_view_reproduces_the_single_scale_prediction(name, coco):
    detector, tta = detector_and_tta(name)
    image = _image(coco)
    scale = (83, 50)  # 61 -> 50 pixels: a non-integer scale factor and padding to 64
    expected = single_scale(detector, image, scale)
    found = tta_predict(tta, image, [(scale, False)])
    assert len(expected) > 0 and expected.masks.shape[1:] == (SIZE, SIZE)
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        assert torch.equal(found[key], expected[key]), key


@pytest.mark.parametrize('name', DETECTORS)
def test_a_flipped_view_of_a_mirrored_image_gives_the_same_instances(name, coco):
    detector, tta = detector_and_tta(name)
    image = _image(coco)
    expected = single_scale(detector, image, (SIZE, SIZE))
    found = tta_predict(tta, np.ascontiguousarray(image[:, ::-1]), [((SIZE, SIZE), True)])
    mirrored = expected.bboxes[:, [2, 1, 0, 3]] * torch.tensor([-1., 1., -1., 1.])
    mirrored[:, [0, 2]] += SIZE
    assert torch.equal(found.labels, expected.labels)
    assert torch.equal(found.scores, expected.scores)
    torch.testing.assert_close(found.bboxes, mirrored, rtol=0, atol=1e-4)
    differ = (found.masks != expected.masks.flip(-1)).sum().item()
    assert differ <= 0.001 * expected.masks.numel(), differ


def _view_mask(mask, meta):
    """The original mask as a view sees it: resized like the pipeline, maybe mirrored,
    zero-padded to the preprocessor's multiple of 32."""
    height, width = meta['img_shape']
    view = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    if meta['flip']:
        view = view[:, ::-1]
    padded = np.zeros((-(-height // 32) * 32, -(-width // 32) * 32), np.float32)
    padded[:height, :width] = view
    return torch.from_numpy(padded)[None, None]


def test_every_view_puts_its_mask_on_the_original_pixels():
    """An oracle mask branch (the true mask, RoIAligned as the heads sample features)
    through each view's box mapping, un-mirroring and mmdet's pasting gives back the
    true mask: odd sizes, unequal x/y scale factors, padding, mirrored views."""
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    from swin_mm.tta.view_geometry import boxes_to_view, roi_masks_to_original
    truth = np.zeros((SIZE, 45), np.uint8)  # a right triangle: mirroring it shows
    cv2.fillPoly(truth, [np.array([[6, 8], [38, 8], [6, 50]], np.int32)], 1)
    box = torch.tensor([[6., 8., 39., 51.]])
    views = [dict(img_shape=(h, w), scale_factor=(w / 45, h / SIZE), flip=flip,
                  flip_direction='horizontal')
             for (h, w), flip in [((SIZE, 45), False), ((97, 71), True), ((41, 30), True),
                                  ((77, 58), False)]]
    roi_align = RoIAlign(28, 1.0, 0, aligned=True)
    head = FCNMaskHead(num_convs=0, num_classes=1)
    test_cfg = Config(dict(mask_thr_binary=0.5))

    def paste(maps):
        results = InstanceData(bboxes=box.clone(), labels=torch.zeros(1, dtype=torch.long))
        meta = dict(ori_shape=truth.shape, scale_factor=(1., 1.))
        return head.predict_by_feat([maps], [results], [meta], test_cfg, rescale=True,
                                    activate_map=True)[0].masks[0].numpy()

    def iou(mask):
        return (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum()

    maps = []
    for meta in views:
        rois = torch.cat([torch.zeros(1, 1), boxes_to_view(box, meta)], dim=1)
        sampled = roi_align(_view_mask(truth, meta), rois)
        maps.append(roi_masks_to_original(sampled, meta))
        assert iou(paste(maps[-1])) > 0.9, meta
        if meta['flip']:  # without un-mirroring, the view's mask lands mirrored
            assert iou(paste(sampled)) < 0.7
    assert iou(paste(torch.stack(maps).mean(dim=0))) > 0.93


def test_multi_scale_and_flip_merge_every_view(coco):
    """Three scales x flip on the HTC++ recipe (semantic branch, soft-NMS): instances
    on the original image, no more than max_per_img, scores from soft-NMS. Few
    proposals: every one of the 80 classes is a candidate here (score threshold 0), and
    soft-NMS is quadratic in the candidates."""
    _, tta = detector_and_tta('htcpp_swin_b_coco', proposals=4)
    views = [(scale, flip) for scale in [(83, 50), (125, 75), (375, 100)]
             for flip in (False, True)]
    found = tta_predict(tta, _image(coco), views)
    assert 0 < len(found) <= tta.tta_cfg.max_per_img == 10
    assert tta.tta_cfg.nms.type == 'soft_nms'
    assert found.masks.shape[1:] == (SIZE, SIZE) and found.masks.dtype == torch.bool
    assert (found.bboxes >= 0).all() and (found.bboxes <= SIZE).all()


def test_detectors_without_masks_take_mmdets_box_path(coco):
    """A Faster R-CNN (the Mask R-CNN recipe without its mask branch) goes through
    DetTTAModel's box merge, with the NMS of its test_cfg."""
    import swin_mm.tta  # noqa: F401
    from mmdet.registry import MODELS
    cfg = load_shrunk('mask_rcnn_swin_t_coco_3x')
    cfg.model.type = 'FasterRCNN'
    del cfg.model.roi_head['mask_roi_extractor'], cfg.model.roi_head['mask_head']
    with DefaultScope.overwrite_default_scope('mmdet'):
        tta = MODELS.build(dict(cfg.tta_model, module=cfg.model)).eval()
    assert not tta.module.with_mask
    found = tta_predict(tta, _image(coco), [((83, 50), False), ((83, 50), True)])
    assert 'masks' not in found and 0 < len(found) <= 10


def test_unusable_settings_are_clear_errors():
    import swin_mm.tta  # noqa: F401
    from swin_mm.tta.view_geometry import view_flip
    with pytest.raises(KeyError, match="expected 'flip' and 'flip_direction' in each view"):
        view_flip(dict(img_shape=(4, 4), scale_factor=(1., 1.)))
    with pytest.raises(ValueError, match="expected flip_direction one of"):
        view_flip(dict(flip=True, flip_direction='sideways'))
    _, tta = detector_and_tta('mask_rcnn_swin_t_coco_3x')
    with pytest.raises(ValueError, match=r"expected tta_cfg keys among .*found \['iou'\]"):
        type(tta)(module=tta.module, tta_cfg=dict(iou=0.5))
