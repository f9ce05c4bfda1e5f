"""Notebooks whose saved outputs are written by hand because they cannot run here.

- legacy_keras2: a 2019 hand-in (standalone Keras 2.2, TF 1.13 on Colab): `SGD(lr=...)`,
  `history.history['acc']`, `kernel_initializer='zero'`, `tf.nn.softmax`, `Dense(input_shape=(784,))`.
  Current Keras cannot run `lr=`, so its outputs imitate what Keras 2.2.4 printed; the numbers are those of
  a real Keras 3 run of the same configurations (correct_full), slightly perturbed as a different run would be.
- wrong_assignment: a CNN on CIFAR-10 from another assignment (no CIFAR-10 offline).
Plots are drawn with matplotlib from those numbers, so the notebooks look like saved Jupyter output.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from sample_legacy_text import LEGACY_CELLS, LEGACY_HISTORIES, WRONG_CELLS, WRONG_HISTORY

OLD_KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
TF1_CREATE_WARNING = (
    "WARNING:tensorflow:From /usr/local/lib/python3.6/dist-packages/tensorflow/python/framework/"
    "op_def_library.py:263: colocate_with (from tensorflow.python.framework.ops) is deprecated and will be "
    "removed in a future version.\nInstructions for updating:\nColocations handled automatically by placer.\n"
)
TF1_FIT_WARNING = (
    "WARNING:tensorflow:From /usr/local/lib/python3.6/dist-packages/tensorflow/python/ops/math_ops.py:3066: "
    "to_int32 (from tensorflow.python.ops.math_ops) is deprecated and will be removed in a future version.\n"
    "Instructions for updating:\nUse tf.cast instead.\n"
)
TF1_DROPOUT_WARNING = (
    "WARNING:tensorflow:From /usr/local/lib/python3.6/dist-packages/keras/backend/tensorflow_backend.py:3445: "
    "calling dropout (from tensorflow.python.ops.nn_ops) with keep_prob is deprecated and will be removed in a "
    "future version.\nInstructions for updating:\nPlease use `rate` instead of `keep_prob`. "
    "Rate should be set to `rate = 1 - keep_prob`.\n"
)


def png_output(draw) -> nbformat.NotebookNode:
    """Render `draw(ax)` the way the 2019 inline backend did (6x4 in, 72 dpi) as a display_data output."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=72)
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return new_output(
        "display_data",
        data={"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": "<Figure size 432x288 with 1 Axes>"},
    )


def keras2_fit_log(history: dict[str, list[float]], n_train: int, n_val: int, seconds: int,
                   epochs: int, early_stop: bool) -> str:
    """The text Keras 2.2.4 prints for fit(..., verbose=2)."""
    lines = [f"Train on {n_train} samples, validate on {n_val} samples"]
    for epoch, values in enumerate(zip(history["loss"], history["acc"], history["val_loss"], history["val_acc"])):
        loss, acc, val_loss, val_acc = values
        lines.append(f"Epoch {epoch + 1}/{epochs}")
        lines.append(f" - {seconds}s - loss: {loss:.4f} - acc: {acc:.4f} - val_loss: {val_loss:.4f} - val_acc: {val_acc:.4f}")
    if early_stop:
        lines.append("Restoring model weights from the end of the best epoch")
        lines.append(f"Epoch {len(history['loss']):05d}: early stopping")
    return "\n".join(lines) + "\n"


def compare_plot(h1: dict, h2: dict, name1: str, name2: str, title: str, metric: str) -> nbformat.NotebookNode:
    def draw(ax):
        ax.plot(h1[metric], color="green")
        ax.plot(h1["val_" + metric], "--", color="green")
        ax.plot(h2[metric], color="blue")
        ax.plot(h2["val_" + metric], "--", color="blue")
        ax.set_title(title)
        ax.set_ylabel("Accuracy" if metric == "acc" else "Loss")
        ax.set_xlabel("Epoch")
        ax.legend([f"Train {name1}", f"Val {name1}", f"Train {name2}", f"Val {name2}"],
                  loc="lower right" if metric == "acc" else "upper right")
    return png_output(draw)


def single_plot(history: dict, metric: str, title: str) -> nbformat.NotebookNode:
    def draw(ax):
        ax.plot(history[metric])
        ax.plot(history["val_" + metric])
        ax.set_title(title)
        ax.set_ylabel("Accuracy" if metric in ("acc", "accuracy") else "Loss")
        ax.set_xlabel("Epoch")
        ax.legend(["Train", "Val"], loc="upper left" if metric in ("acc", "accuracy") else "upper right")
    return png_output(draw)


def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return new_output("stream", name=name, text=text)


def _outputs_for(tag: str) -> list[nbformat.NotebookNode]:
    """Saved outputs of the legacy notebook's cell tagged `tag` (see sample_legacy_text.LEGACY_CELLS)."""
    h = LEGACY_HISTORIES
    fits = {  # tag -> (history key, extra stderr before the log)
        "fit_sigmoid": ("sigmoid", TF1_FIT_WARNING), "fit_relu": ("relu", ""),
        "fit_zero": ("zero", ""), "fit_normal": ("normal", ""), "fit_glorot": ("glorot", ""),
        "fit_sgd": ("sgd", ""), "fit_adam": ("adam", ""), "fit_rms": ("rmsprop", ""),
    }
    if tag == "imports":
        return [stream("Using TensorFlow backend.\n", "stderr")]
    if tag == "load":
        return [stream("(60000, 784) (10000, 784)\n")]
    if tag == "summary":
        return [stream(TF1_CREATE_WARNING, "stderr"), stream(LEGACY_SUMMARY)]
    if tag in fits:
        key, warning = fits[tag]
        outputs = [stream(warning, "stderr")] if warning else []
        return outputs + [stream(keras2_fit_log(h[key], 48000, 12000, 3, 3, False))]
    if tag == "plots_act":
        return [compare_plot(h["sigmoid"], h["relu"], "sigmoid", "relu", "Sigmoid vs ReLU", "acc"),
                compare_plot(h["sigmoid"], h["relu"], "sigmoid", "relu", "Sigmoid vs ReLU", "loss")]
    if tag == "plots_init":
        return [compare_plot(h["zero"], h["normal"], "ceros", "normal", "Ceros vs normal", "acc"),
                compare_plot(h["normal"], h["glorot"], "normal", "glorot", "Normal vs glorot", "acc")]
    if tag == "plots_opt":
        return [compare_plot(h["sgd"], h["adam"], "SGD", "Adam", "SGD vs Adam", "loss"),
                compare_plot(h["adam"], h["rmsprop"], "Adam", "RMSprop", "Adam vs RMSprop", "loss")]
    if tag == "fit_final":
        final = h["final"]
        return [stream(TF1_DROPOUT_WARNING, "stderr"),
                stream(keras2_fit_log(final, 48000, 12000, 6, 20, len(final["loss"]) < 20))]
    if tag == "plots_final":
        final = h["final"]
        best = min(range(len(final["val_loss"])), key=final["val_loss"].__getitem__)
        return [single_plot(final, "acc", "Model Accuracy"), single_plot(final, "loss", "Model Loss"),
                stream(f"Mejor epoch: {best + 1}  val_acc: {final['val_acc'][best]}\n")]
    if tag == "test":
        loss, acc = h["test"]
        return [stream(f"Test loss: {loss}\nTest accuracy: {acc}\n")]
    raise KeyError(tag)


LEGACY_SUMMARY = """_________________________________________________________________
Layer (type)                 Output Shape              Param #   
=================================================================
dense_1 (Dense)              (None, 256)               200960    
_________________________________________________________________
dense_2 (Dense)              (None, 128)               32896     
_________________________________________________________________
dense_3 (Dense)              (None, 10)                1290      
=================================================================
Total params: 235,146
Trainable params: 235,146
Non-trainable params: 0
_________________________________________________________________
"""


def _notebook(cells: list[tuple[str, str, str | None]], outputs_for, metadata: dict) -> nbformat.NotebookNode:
    """Build an nbformat 4.2 notebook (no cell ids, as 2019-2021 Jupyter wrote them)."""
    nb = new_notebook()
    nb.nbformat_minor = 2
    nb.metadata = metadata
    count = 0
    for kind, source, tag in cells:
        if kind == "md":
            cell = new_markdown_cell(source)
        else:
            count += 1
            cell = new_code_cell(source, execution_count=count, outputs=outputs_for(tag) if tag else [])
        cell.pop("id", None)
        nb.cells.append(cell)
    return nb


def legacy_keras2_notebook() -> nbformat.NotebookNode:
    metadata = {
        "kernelspec": OLD_KERNEL,
        "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                          "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                          "pygments_lexer": "ipython3", "version": "3.6.7"},
    }
    return _notebook(LEGACY_CELLS, _outputs_for, metadata)


def _wrong_outputs(tag: str) -> list[nbformat.NotebookNode]:
    h = WRONG_HISTORY
    if tag == "load":
        return [stream("Downloading data from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz\n"
                       "170500096/170498071 [==============================] - 4s 0us/step\n"),
                stream("(50000, 32, 32, 3) (10000, 32, 32, 3)\n")]
    if tag == "fit":
        lines = []
        for epoch in range(len(h["loss"])):
            lines.append(f"Epoch {epoch + 1}/{len(h['loss'])}")
            lines.append(f"1407/1407 [==============================] - 11s 8ms/step - loss: {h['loss'][epoch]:.4f} "
                         f"- accuracy: {h['accuracy'][epoch]:.4f} - val_loss: {h['val_loss'][epoch]:.4f} "
                         f"- val_accuracy: {h['val_accuracy'][epoch]:.4f}")
        return [stream("\n".join(lines) + "\n")]
    if tag == "plot":
        return [single_plot(h, "accuracy", "Precisión CNN CIFAR-10")]
    if tag == "test":
        return [stream("313/313 - 1s - loss: 0.8812 - accuracy: 0.7016\n"),
                stream("Precisión en test: 0.7016000151634216\n")]
    raise KeyError(tag)


def wrong_assignment_notebook() -> nbformat.NotebookNode:
    metadata = {
        "accelerator": "GPU",
        "colab": {"name": "Practica3_CNN.ipynb", "provenance": []},
        "kernelspec": OLD_KERNEL,
        "language_info": {"name": "python"},
    }
    return _notebook(WRONG_CELLS, _wrong_outputs, metadata)

