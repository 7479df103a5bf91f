"""Augmentation pipelines: uint8 tensors of their own, and picklable (loader processes started by spawn or
forkserver receive them pickled)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from artkit.data.transforms import STAGES, aug_names, create_transform


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("preset", aug_names())
def test_every_pipeline_pickles_and_gives_the_same_uint8_tensor_after(preset: str, stage: str):
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    image.flags.writeable = False  # as the decode cache's memory maps are
    transform = create_transform(preset, 32, stage)
    copy = pickle.loads(pickle.dumps(transform))
    transform.set_random_seed(7)
    copy.set_random_seed(7)
    out = transform(image=image)["image"]
    assert out.dtype == torch.uint8 and out.shape == (32, 32, 3) and out.is_contiguous()
    assert torch.equal(out, copy(image=image)["image"])


def test_the_tensor_has_memory_of_its_own_even_from_a_read_only_image():
    from artkit.data.album_ops import HWCTensor

    image = np.zeros((4, 5, 3), dtype=np.uint8)
    image.flags.writeable = False  # as the decode cache's memory maps are
    out = HWCTensor()(image=image)["image"]
    out[0, 0, 0] = 1  # torch.from_numpy of the image itself would write through to it
    assert out.shape == (4, 5, 3) and out.is_contiguous() and image.max() == 0


def test_a_batch_of_pipeline_images_is_channels_last_without_a_copy():
    from artkit.engine.device import as_nchw

    images = [create_transform("crop", 16, "train")(image=_image(seed))["image"] for seed in range(3)]
    stacked = torch.stack(images)
    batch = as_nchw(stacked)
    assert batch.shape == (3, 3, 16, 16) and batch.is_contiguous(memory_format=torch.channels_last)
    assert batch.data_ptr() == stacked.data_ptr()  # a view of the collated batch
    assert torch.equal(batch[1], images[1].permute(2, 0, 1))  # channel c of image b is batch[b, c]


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 30, 3), dtype=np.uint8)


def test_each_operation_of_a_sample_draws_its_own_numbers():
    import albumentations as A

    from artkit.data.dataset import ImageTable

    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    table = ImageTable(["x"] * 4, None, A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]))
    table._load = lambda i: (i, image)
    flips = {"h": image[:, ::-1], "v": image[::-1], "both": image[::-1, ::-1], "none": image}
    seen = {name: 0 for name in flips}
    for seed in range(400):
        out = table[(0, seed)][0]
        seen[next(name for name, flipped in flips.items() if np.array_equal(out, flipped))] += 1
    # albumentations' set_random_seed seeds every operation alike: both flips, or none, every time
    assert all(60 <= count <= 140 for count in seen.values()), seen
    assert np.array_equal(table[(0, 5)][0], table[(0, 5)][0])  # the seed still fixes the sample


def test_a_shrinking_resize_is_pils_antialiased_bilinear():
    from PIL import Image

    from artkit.data.album_ops import resize_image

    image = np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((40, 32), Image.BILINEAR)).astype(np.int16)
    assert np.abs(resize_image(image, (32, 40)).astype(np.int16) - expected).max() <= 1


def test_a_shrinking_resize_averages_fine_detail_instead_of_sampling_it():
    """One-pixel stripes shrunk by 1.5x are grey; sampling two pixels for each output (plain bilinear) leaves a
    pattern of stripes that the painting does not have."""
    import cv2

    from artkit.data.album_ops import resize_image

    stripes = np.zeros((60, 60, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    assert resize_image(stripes, (40, 40)).astype(float).std() < 20
    assert cv2.resize(stripes, (40, 40), interpolation=cv2.INTER_LINEAR).astype(float).std() > 40


def test_an_enlarging_resize_is_opencvs_bilinear_as_before():
    import cv2

    from artkit.data.album_ops import resize_image

    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(resize_image(image, (32, 32)), cv2.resize(image, (32, 32), interpolation=cv2.INTER_LINEAR))


def test_the_antialiased_crop_draws_the_same_crops_as_albumentations():
    import albumentations as A

    from artkit.data.album_ops import AntialiasedRandomResizedCrop
    from artkit.data.dataset import reseed

    ours = A.Compose([AntialiasedRandomResizedCrop(size=(64, 64), scale=(0.15, 0.4), ratio=(0.6, 1.67))])
    theirs = A.Compose([A.RandomResizedCrop(size=(64, 64), scale=(0.15, 0.4), ratio=(0.6, 1.67))])
    image = _image(3)  # every crop of it is enlarged to 64 px, which both resize alike
    for seed in range(20):
        reseed(ours, seed)
        reseed(theirs, seed)
        assert np.array_equal(ours(image=image)["image"], theirs(image=image)["image"])


def test_a_shrunk_image_comes_back_in_the_layout_the_pipeline_works_in():
    """(H, W, C) and contiguous, so that the operations after it (and the final tensor) copy nothing to reorder it."""
    from artkit.data.album_ops import resize_image

    image = np.random.default_rng(4).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    out = resize_image(image[5:45, 3:37], (24, 20))
    assert out.shape == (24, 20, 3) and out.flags.c_contiguous
