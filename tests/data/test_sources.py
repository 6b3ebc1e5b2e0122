"""Dataset sources: digits, tensorflow-datasets (mock data), folders, TFRecords."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.data.datasets import load_source
from glow_tf.data.digits import DIGITS_TEST_SIZE, digits_arrays
from glow_tf.data.pipeline import evaluation_dataset, fixed_batch, training_dataset
from glow_tf.data.tfrecord import CELEBA_ATTRIBUTES, write_openai_tfrecord


def _first(source, split="train"):
    return next(iter(source.split(split)))


def test_digits_split_is_fixed_disjoint_and_scaled():
    train_images, train_labels = digits_arrays("train")
    test_images, test_labels = digits_arrays("test")
    assert train_images.shape == (1797 - DIGITS_TEST_SIZE, 8, 8, 1) and test_images.shape == (
        297,
        8,
        8,
        1,
    )
    assert train_images.dtype == np.uint8 and train_images.max() == 255
    assert set(np.unique(train_labels)) == set(range(10))
    train_rows = {image.tobytes() for image in train_images}
    overlap = sum(image.tobytes() in train_rows for image in test_images)
    assert overlap < 3  # sklearn's digits hold a couple of exact duplicates
    np.testing.assert_array_equal(digits_arrays("test")[0], test_images)
    source = load_source("digits")
    assert source.image_shape == (8, 8, 1) and source.num_classes == 10
    assert source.num_examples == {"train": 1500, "test": 297}


def test_pipeline_batches_images_or_pairs():
    source = load_source("digits")
    images = next(iter(training_dataset(source, 16)))
    assert images.shape == (16, 8, 8, 1) and images.dtype == tf.uint8
    images, labels = next(iter(training_dataset(source, 16, labels=True)))
    assert labels.shape == (16,) and labels.dtype == tf.int32
    batches = list(evaluation_dataset(source, 100, num_examples=250))
    assert [int(b.shape[0]) for b in batches] == [100, 100, 50]
    first, second = fixed_batch(source, "train", 8, seed=3), fixed_batch(source, "train", 8, seed=3)
    np.testing.assert_array_equal(first["image"], second["image"])


@pytest.mark.parametrize(
    "name, shape, classes",
    [
        ("mnist", (32, 32, 1), 10),
        ("fashion_mnist", (32, 32, 1), 10),
        ("cifar10", (32, 32, 3), 10),
        ("imagenet_resized/32x32", (32, 32, 3), 1000),
        ("imagenet_resized/64x64", (64, 64, 3), 1000),
        ("lsun/church_outdoor", (64, 64, 3), 0),
    ],
)
def test_tfds_sources_on_mock_data(name, shape, classes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4):
        source = load_source(name)
        assert source.image_shape == shape and source.num_classes == classes
        for split in ("train", "test"):
            example = _first(source, split)
            assert tuple(example["image"].shape) == shape and example["image"].dtype == tf.uint8
            assert ("label" in example) == (classes > 0)
        if name == "mnist":  # OpenAI's 2-pixel zero border around 28x28
            image = _first(source)["image"].numpy()
            assert image[:2].max() == 0 and image[:, -2:].max() == 0
        batch = next(iter(training_dataset(source, 2, labels=classes > 0, shuffle_buffer=8)))
        assert (batch[0] if classes else batch).shape == (2, *shape)


def test_celeb_a_is_cropped_resized_and_has_attributes():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3):
        source = load_source("celeb_a", image_size=32)
        example = _first(source)
    assert source.image_shape == (32, 32, 3) and len(source.attribute_names) == 40
    assert "Smiling" in source.attribute_names and source.num_classes == 0
    assert example["attributes"].shape == (40,) and set(example["attributes"].numpy()) <= {0, 1}


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))


def test_folder_of_class_directories(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("cats", "dogs"):
            for i in range(3):
                image = rng.integers(0, 255, (20, 12, 3), dtype=np.uint8)
                _write_png(str(tmp_path / split / label / f"{i}.png"), image)
    (tmp_path / "train" / "cats" / "notes.png").write_text("not an image")
    jpeg = tf.io.encode_jpeg(rng.integers(0, 255, (9, 9, 3), dtype=np.uint8)).numpy()
    (tmp_path / "train" / "dogs" / "photo.JPG").write_bytes(jpeg)
    (tmp_path / "train" / "dogs" / "broken.jpg").write_bytes(jpeg[:40])
    source = load_source(f"folder:{tmp_path}", image_size=8)
    assert "skipped 1 unreadable file" in capsys.readouterr().out
    assert source.image_shape == (8, 8, 3) and source.num_classes == 2
    train = list(source.split("train"))
    assert len(train) == 7  # 6 PNGs + the good JPEG; the truncated JPEG is dropped
    assert sorted(int(e["label"]) for e in train) == [0, 0, 0, 1, 1, 1, 1]
    assert len(list(source.split("test"))) == 6


def test_folder_without_splits_holds_out_every_20th_and_grayscale(tmp_path):
    for i in range(40):
        _write_png(str(tmp_path / f"{i:02d}.png"), np.full((16, 16, 1), i, np.uint8))
    source = load_source(f"folder:{tmp_path}", image_size=4, channels=1)
    assert source.num_examples == {"train": 38, "test": 2} and source.num_classes == 0
    test_values = sorted(int(e["image"].numpy()[0, 0, 0]) for e in source.split("test"))
    assert test_values == [0, 20]


def test_openai_tfrecords_with_split_placeholder_and_attributes(tmp_path):
    rng = np.random.default_rng(1)
    for split, count in (("train", 5), ("validation", 3)):
        os.makedirs(tmp_path / split)
        images = rng.integers(0, 255, (count, 16, 16, 3), dtype=np.uint8)
        attributes = rng.choice([-1, 1], (count, 40))
        write_openai_tfrecord(
            str(tmp_path / split / f"{split}-r04-s-0000-of-0001.tfrecords"),
            images,
            attributes=attributes,
        )
    source = load_source(f"tfrecord:{tmp_path}/{{split}}/*-r04-*.tfrecords")
    assert source.image_shape == (16, 16, 3) and source.attribute_names == CELEBA_ATTRIBUTES
    train, test = list(source.split("train")), list(source.split("test"))
    assert len(train) == 5 and len(test) == 3
    assert set(train[0]["attributes"].numpy()) <= {0, 1}
    resized = load_source(f"tfrecord:{tmp_path}/train/*.tfrecords", image_size=8)
    assert resized.image_shape == (8, 8, 3)
    assert len(list(resized.split("test"))) == 3  # found train -> validation


def test_tfrecords_without_validation_hold_out_every_20th(tmp_path):
    images = np.arange(45, dtype=np.uint8).reshape(45, 1, 1, 1) * np.ones((1, 4, 4, 1), np.uint8)
    write_openai_tfrecord(str(tmp_path / "all.tfrecords"), images)
    source = load_source(f"tfrecord:{tmp_path}/*.tfrecords")
    test_values = [int(e["image"][0, 0, 0]) for e in source.split("test")]
    assert test_values == [0, 20, 40] and len(list(source.split("train"))) == 42


@pytest.mark.parametrize(
    "spec, message",
    [
        ("imagenet", "unknown dataset 'imagenet'"),
        ("", "non-empty"),
        ("lsun/", "needs a category"),
        ("folder:/no/such/dir", "is not a directory"),
        ("tfrecord:/no/such/*.tfrecords", "no files match"),
    ],
)
def test_bad_dataset_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        load_source(spec)


def test_empty_folder_and_unlabelled_conditional(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no readable PNG/JPEG images"):
        load_source(f"folder:{tmp_path}")
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(ValueError, match=r"1 unreadable file\(s\) skipped"):
        load_source(f"folder:{tmp_path}")
    for i in range(3):
        _write_png(str(tmp_path / f"{i}.png"), np.zeros((4, 4, 3), np.uint8))
    source = load_source(f"folder:{tmp_path}", image_size=4)
    with pytest.raises(ValueError, match="has no class labels"):
        training_dataset(source, 2, labels=True)


def test_not_openai_tfrecord(tmp_path):
    with tf.io.TFRecordWriter(str(tmp_path / "x.tfrecords")) as writer:
        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))
                }
            )
        )
        writer.write(example.SerializeToString())
    with pytest.raises(ValueError, match="not in OpenAI's TFRecord format"):
        load_source(f"tfrecord:{tmp_path}/*.tfrecords")
