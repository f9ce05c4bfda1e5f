"""Loss records cross the trust boundary with their settings, and rebuild through the allowlist."""

import json

import keras

from grader.capture.kernel import names as probe_names
from grader.retrain.allowlist import build_loss


def test_loss_object_keeps_from_logits_through_the_retrain():
    record = probe_names.loss_record(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    record = json.loads(json.dumps(record))  # what the trusted side reads is JSON only
    rebuilt = build_loss(record)
    assert isinstance(rebuilt, keras.losses.SparseCategoricalCrossentropy)
    assert rebuilt.get_config()["from_logits"] is True


def test_loss_names_and_functions_stay_names():
    assert probe_names.loss_record("categorical_crossentropy") == "categorical_crossentropy"
    fn = keras.losses.sparse_categorical_crossentropy
    assert probe_names.loss_record(fn) == "sparse_categorical_crossentropy"
    assert build_loss(probe_names.loss_record(fn)) is not None
