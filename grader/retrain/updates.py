"""Keras' Adam update as ONE fused XLA computation, with Keras' exact numbers.

Keras applies Adam variable by variable as a dozen separate element-wise ops (m, v, the step), each
a full pass over the weights: on the homework's final model (535,000 weights, batch 64) that is about
a quarter of every training step, spent moving memory. XLA fuses those ops into one loop over the
weights. The scalar part (bias corrections, the step size) is computed outside with the very calls
of `keras.optimizers.Adam.update_step`, the element-wise part inside with the same calls in the same
order, so every weight gets the same IEEE operations: subtract, multiply, square, add, sqrt and divide
are correctly rounded wherever they run, as long as nothing contracts a multiply and an add into one
FMA instruction. XLA's CPU compiler does that on FMA-capable CPUs, so the retrain process caps the
instruction set XLA may use at AVX, which has no FMA (`XLA_FLAGS=--xla_cpu_max_isa=AVX`, set before
XLA's first compilation; only this module compiles with XLA). A test checks the weights bit for bit
against `optimizer.apply` on real data.

Anything else (other optimizers, amsgrad, clipping, weight decay, EMA, gradient accumulation, loss
scaling, variable constraints, a missing gradient) keeps `optimizer.apply`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
from keras import ops

_ISA_FLAG = "--xla_cpu_max_isa="
_EXACT_ISA = "AVX"  # the widest instruction set XLA may use without FMA contraction


def pin_xla_isa() -> bool:
    """Cap XLA's instruction set at AVX (no FMA) unless the environment already chose one; True when
    XLA will compile without FMA. Must run before this process's first XLA compilation."""
    flags = os.environ.get("XLA_FLAGS", "")
    chosen = [f.split("=", 1)[1] for f in flags.split() if f.startswith(_ISA_FLAG)]
    if not chosen:
        os.environ["XLA_FLAGS"] = f"{flags} {_ISA_FLAG}{_EXACT_ISA}".strip()
        return True
    return chosen[-1].upper() in {"SSE4_2", _EXACT_ISA}


_EXACT = pin_xla_isa()


def fusable(optimizer: keras.optimizers.Optimizer, variables: Sequence[keras.Variable]) -> bool:
    """The fused update gives Keras' numbers here: XLA compiles without FMA and the optimizer is Adam as
    `update_step` alone applies it, nothing of `apply`'s optional machinery in play."""
    return (_EXACT and type(optimizer) is keras.optimizers.Adam and not optimizer.amsgrad
            and not (optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue)
            and optimizer.weight_decay is None and not optimizer.use_ema
            and not optimizer.gradient_accumulation_steps and optimizer.loss_scale_factor is None
            and all(v.dtype == "float32" and v.trainable and v.constraint is None
                    and not getattr(v, "overwrite_with_gradient", False) for v in variables))


def fused_apply(optimizer: keras.optimizers.Optimizer,
                variables: Sequence[keras.Variable]) -> Callable[[Sequence], None]:
    """`apply(grads)` for use inside a traced training step: the fused Adam update when it gives
    Keras' numbers, else `optimizer.apply`. The optimizer must be built on `variables`."""
    variables = list(variables)
    if not fusable(optimizer, variables):
        return lambda grads: optimizer.apply(grads, variables)
    index = [optimizer._get_variable_index(v) for v in variables]
    momentums = [optimizer._momentums[i] for i in index]
    velocities = [optimizer._velocities[i] for i in index]
    beta_1, beta_2, epsilon = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon

    def elementwise(grads, alpha):  # Adam.update_step's array part, op for op
        for gradient, variable, m, v in zip(grads, variables, momentums, velocities):
            gradient = ops.cast(gradient, variable.dtype)
            m.assign_add(ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
            v.assign_add(ops.multiply(ops.subtract(ops.square(gradient), v), 1 - beta_2))
            variable.assign_sub(ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), epsilon)))

    import tensorflow as tf

    fused = tf.function(elementwise, jit_compile=True, autograph=False)

    def apply(grads):
        if any(g is None for g in grads):
            return optimizer.apply(grads, variables)
        learning_rate = optimizer.learning_rate  # read once per step, as `apply` does
        # Adam.update_step's scalar part, op for op (it is the same for every float32 variable).
        lr = ops.cast(learning_rate, "float32")
        local_step = ops.cast(optimizer.iterations + 1, "float32")
        beta_1_power = ops.power(ops.cast(beta_1, "float32"), local_step)
        beta_2_power = ops.power(ops.cast(beta_2, "float32"), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        fused(list(grads), alpha)
        optimizer.iterations.assign_add(1)

    return apply
