"""``policy.c`` / ``policy.h``: the actor as dependency-free C99.

No heap, no libc beyond ``<math.h>`` (``expf`` for elu/silu; tanh is a table of cubic
pieces, :func:`tanh_table`), static scratch buffers of the widest layer, weights in ``static const``
arrays (flash on a microcontroller). The integrator state of a ``robolearn.actor/2``
policy is a static array inside policy.c, zeroed by ``robolearn_policy_reset()``.

float32: ``1/std`` of the normalizer is folded into the first layer's weights (the mean
is subtracted and the clip applied in raw units, ``|obs - mean| <= c * std``, in one pass;
the mean is not folded into the bias: ``b - W (mean / std)`` cancels badly for inputs of
small std). Weights are stored [out / 4][in][4]; ``dense()`` keeps 4 accumulators seeded
with the bias, unrolls the input loop by 4 and applies the activation as it stores.

int8 (``quantize="int8"``, CMSIS-NN style): int8 weights (symmetric, one float32 scale per
output row), int16 activations (q15: tanh's output [-1, 1] at 1/32767, the normalized
observation [-c, c] at c/32767; relu/elu/silu at a range calibrated on random inputs,
saturating), int32 accumulation with the Cortex-M4's SMLAD (two 16 x 16 MACs per
instruction) after SXTB16 sign-extends two weights at once; per layer the accumulator is
requantized in float32 (``acc * w_scale[row] * in_scale + b``), the activation evaluated
and the result rounded back to q15. Without the DSP extension (host builds) the same
integer arithmetic is plain C, bit-identical.

API (``policy.h``)::

    #define ROBOLEARN_OBS_DIM <n>      /* raw observation */
    #define ROBOLEARN_ACT_DIM <m>
    #define ROBOLEARN_STATE_DIM <k>    /* integrator entries, 0 = stateless */
    void robolearn_policy(const float *obs, float *action);  /* one control step */
    void robolearn_policy_step(const float *obs, float *action);  /* the same function */
    void robolearn_policy_reset(void);                        /* z = 0, at (re)start */
    void robolearn_policy_state(float *z);                    /* copies z out (k floats) */
    extern const unsigned char robolearn_manifest_sha256[32];
    float robolearn_action_to_rpm(int motor, float action);
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .policy_file import PolicySpec

QUANT_MAX = 127  # symmetric int8: [-127, 127], so that -q is always representable
BLOCK = 4  # output rows per pass of dense(): 4 accumulators + 4 weights + 1 input in FPU registers


@dataclass
class Int8Layer:
    q: np.ndarray  # int8 (out, in)
    scale: np.ndarray  # float32 (out,)

    def dequantized(self) -> np.ndarray:
        out: np.ndarray = self.q.astype(np.float32) * self.scale[:, None]
        return out


def quantize_int8(spec: PolicySpec) -> list[Int8Layer]:
    """Per-row symmetric int8 quantization of every weight matrix (round to nearest)."""
    out = []
    for w in spec.weights:
        amax = np.abs(w).max(axis=1).astype(np.float64)
        scale = np.where(amax > 0, amax / QUANT_MAX, 1.0)
        q = np.clip(np.rint(w / scale[:, None]), -QUANT_MAX, QUANT_MAX).astype(np.int8)
        out.append(Int8Layer(q, scale.astype(np.float32)))
    return out


def c_float(x: float) -> str:
    """A C float literal that parses back to exactly float32(x) (9 significant digits
    always round-trip a binary32, IEEE 754-2008 section 5.12.2)."""
    s = "%.9g" % float(np.float32(x))
    if not any(c in s for c in ".eEn"):
        s += ".0"
    return s + "f"


def _array(ctype: str, name: str, values: np.ndarray, fmt: Callable[[Any], str], per_line: int = 8, attr: bool = False) -> str:
    flat = [fmt(v) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    a = " ROBOLEARN_WEIGHTS_ATTR" if attr else ""
    return f"static const {ctype} {name}[{len(flat)}]{a} = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def padded_rows(n_out: int) -> int:
    """Output rows rounded up to a whole block (policy.c computes BLOCK rows at a time)."""
    return -(-n_out // BLOCK) * BLOCK


def blocked(w: np.ndarray) -> np.ndarray:
    """(out, in) -> (out_pad / BLOCK, in, BLOCK): the order ``dense()`` reads weights in.

    Rows are zero-padded to a multiple of BLOCK. Reading BLOCK outputs' weights for one
    input at a time means each input is loaded once per block instead of once per row,
    and the weights stream through memory strictly sequentially.
    """
    o, k = w.shape
    pad = np.zeros((padded_rows(o), k), dtype=w.dtype)
    pad[:o] = w
    return pad.reshape(-1, BLOCK, k).transpose(0, 2, 1)


def _pad(v: np.ndarray, fill: float = 0.0) -> np.ndarray:
    out = np.full(padded_rows(len(v)), fill, dtype=np.asarray(v).dtype)
    out[:len(v)] = v
    return out


def padded_inputs(n_in: int) -> int:
    """Inputs rounded up to a multiple of 4 (the int8 kernel reads 4 int8 weights per word)."""
    return -(-n_in // 4) * 4


def weight_bytes(spec: PolicySpec, quantize: str | None) -> int:
    """Bytes of constant data in policy.c: layer weights/biases (+ row scales for int8),
    rows padded to whole blocks (int8: inputs to multiples of 4), the normalization
    constants (float32: mean and clip limit; int8: mean and 1/std) and action clip limits."""
    consts = 4 * (2 * spec.net_in_dim + 2 * spec.act_dim) + 4 * spec.state_dim
    rows = [padded_rows(w.shape[0]) for w in spec.weights]
    biases = 4 * sum(rows)
    if quantize == "int8":
        return consts + biases + sum(r * padded_inputs(int(w.shape[1])) + 4 * r for r, w in zip(rows, spec.weights))
    return consts + biases + 4 * sum(r * int(w.shape[1]) for r, w in zip(rows, spec.weights))


# ------------------------------------------------------------------ int8 model
Q15 = 32767  # int16 activations are symmetric in [-32767, 32767]
INT8_MAX_INPUTS = 512  # 512 * 127 * 32767 < 2**31: the int32 accumulator cannot overflow


@dataclass
class Int8Model:
    """What the int8 C computes: per layer int8 weights with row scales, the scale of the
    layer's int16 input, and (hidden layers) 1 / the scale of its q15 output."""

    layers: list[Int8Layer]
    in_scale: list[float]  # float32 value of one int16 input step, per layer
    out_inv_scale: list[float]  # hidden layers: q = round(activation * out_inv_scale)

    def row_scale(self, i: int) -> np.ndarray:
        """float32 (out,): acc -> pre-activation, w_scale[row] * in_scale."""
        out: np.ndarray = (self.layers[i].scale.astype(np.float64) * self.in_scale[i]).astype(np.float32)
        return out


def _calibration_inputs(spec: PolicySpec, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Network inputs around the normalizer's statistics (+-3 std), for activation ranges."""
    rng = np.random.default_rng(seed)
    x: np.ndarray = spec.obs_mean + rng.standard_normal((n, spec.net_in_dim)) * 3.0 * spec.obs_std
    return x


def int8_model(spec: PolicySpec) -> Int8Model:
    """Quantize weights (per row) and fix the activation scales: tanh's output at 1/32767
    (its range is [-1, 1]); relu/elu/silu at 1.25 x the largest activation met on
    :func:`_calibration_inputs` (larger values saturate)."""
    from .errors import ExportError

    wide = [int(w.shape[1]) for w in spec.weights if padded_inputs(int(w.shape[1])) > INT8_MAX_INPUTS]
    if wide:
        raise ExportError(f"--quantize int8 supports layers of at most {INT8_MAX_INPUTS} inputs (int32 accumulator); "
                          f"this policy has one with {wide[0]}: export float32")
    layers = quantize_int8(spec)
    in_scale = [float(np.float32(spec.obs_clip / Q15))]
    inv = []
    x = np.clip((_calibration_inputs(spec) - spec.obs_mean) * spec.obs_inv_std, -spec.obs_clip, spec.obs_clip)
    from .policy_file import _act_np

    for i in range(len(spec.weights) - 1):
        x = _act_np(x @ spec.weights[i].T.astype(np.float64) + spec.biases[i], spec.activation)
        if spec.activation == "tanh":
            s = 1.0 / Q15
        else:
            amax = float(np.abs(x).max())
            s = 1.25 * amax / Q15 if amax > 0 else 1.0 / Q15
        in_scale.append(float(np.float32(s)))
        inv.append(float(np.float32(1.0 / np.float32(s))))
    return Int8Model(layers, in_scale, inv)


def _f32(a: Any) -> np.ndarray:
    out: np.ndarray = np.asarray(a, np.float32)
    return out


def fast_tanh_np(x: np.ndarray) -> np.ndarray:
    """policy.c's table tanh, op for op in float32 (what the C computes, bit for bit when
    both round every operation: no fused multiply-add)."""
    x = _f32(x)
    tab = tanh_table()
    a = np.abs(x)
    u = a * np.float32(TANH_SCALE)
    inside = u < np.float32(TANH_SEGMENTS)
    i = np.where(inside, np.trunc(np.where(inside, u, 0)), 0).astype(np.int64)
    f = u - i.astype(np.float32)
    c = tab[i]
    y = c[..., 0] + f * (c[..., 1] + f * (c[..., 2] + f * c[..., 3]))
    y = np.where(inside, y, np.float32(1)).astype(np.float32)
    out: np.ndarray = np.where(x < 0, -y, y).astype(np.float32)
    return out


def _act_f32(x: np.ndarray, name: str) -> np.ndarray:
    """The C's activation in float32 (elu/silu through numpy's exp: within an ulp of expf)."""
    x = _f32(x)
    if name == "tanh":
        return fast_tanh_np(x)
    y: np.ndarray
    if name == "relu":
        y = np.where(x > 0, x, np.float32(0))
    elif name == "elu":
        y = np.where(x > 0, x, np.exp(np.minimum(x, 0)) - np.float32(1))
    else:  # silu
        y = x / (np.float32(1) + np.exp(-x))
    return y.astype(np.float32)


def _q15(v: np.ndarray) -> np.ndarray:
    """Saturate to [-32767, 32767] and round to nearest (ties to even) as the C does: the
    float32 additions of 1.5 * 2^23 round, the conversion truncates an integer-valued float.
    (The C skips the saturation after tanh, whose outputs x 32767 cannot exceed it.)"""
    v = np.clip(_f32(v), -np.float32(Q15), np.float32(Q15))
    m = np.float32(12582912.0)
    out: np.ndarray = np.trunc((v + m) - m).astype(np.int64)
    return out


def int8_network(spec: PolicySpec, model: Int8Model, x: np.ndarray) -> np.ndarray:
    """The int8 C's network on network inputs ``x`` (N, obs_dim + k), emulated in numpy
    (integer parts exact, float32 parts op for op). Returns actions (N, act_dim) float32."""
    x = _f32(x)
    xn = np.clip((x - spec.obs_mean) * spec.obs_inv_std, -np.float32(spec.obs_clip), np.float32(spec.obs_clip))
    q = _q15(xn * np.float32(1.0 / np.float32(model.in_scale[0])))
    n = len(spec.weights)
    for i in range(n):
        acc = q @ model.layers[i].q.astype(np.int64).T  # exact: |acc| < 2**31
        y = acc.astype(np.float32) * model.row_scale(i) + spec.biases[i]
        if i < n - 1:
            q = _q15(_act_f32(y, spec.activation) * np.float32(model.out_inv_scale[i]))
    if spec.output_activation == "tanh":
        y = fast_tanh_np(y)
    out: np.ndarray = np.minimum(np.maximum(y, spec.action_low), spec.action_high).astype(np.float32)
    return out


def int8_episodes(spec: PolicySpec, model: Int8Model, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole episodes (E, T, obs_dim) through the int8 emulation: actions (E, T, act), states (E, T, k)."""
    from .policy_file import integrate

    obs = _f32(obs)
    e, t = obs.shape[:2]
    acts = np.zeros((e, t, spec.act_dim), np.float32)
    states = np.zeros((e, t, spec.state_dim), np.float32)
    z = np.zeros((e, spec.state_dim), np.float32)
    for i in range(t):
        if spec.state_dim:
            z = integrate(spec, z, obs[:, i])
        acts[:, i] = int8_network(spec, model, np.concatenate([obs[:, i], z], axis=-1))
        states[:, i] = z
    return acts, states


def packed_int8_words(q: np.ndarray) -> np.ndarray:
    """(out, in) int8 -> uint32 words in the order the int8 ``dense`` reads them:
    [out / 4][in4 / 4][4 rows], each word holding one row's 4 consecutive inputs as bytes
    (w0, w2, w1, w3) from the least significant byte up, so that SXTB16(word) = (w0, w1)
    and SXTB16(word ROR 8) = (w2, w3) line up with the input pairs (x0, x1), (x2, x3)."""
    o, k = q.shape
    pad = np.zeros((padded_rows(o), padded_inputs(k)), np.int64)
    pad[:o, :k] = q
    g = pad.reshape(padded_rows(o) // BLOCK, BLOCK, -1, 4).transpose(0, 2, 1, 3)  # [ob][ib][row][4]
    b = g[..., [0, 2, 1, 3]] & 0xFF
    words: np.ndarray = (b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16) | (b[..., 3] << 24)).astype(np.uint32)
    return words.reshape(-1)


# ------------------------------------------------------------------ C text
def generate_header(spec: PolicySpec, manifest_sha256: str, rpm_min: float, rpm_max: float,
                    control_hz: float, quantize: str | None) -> str:
    return f"""/* policy.h - generated by robolearn firmware_export; do not edit.
 * Manifest SHA-256: {manifest_sha256}
 * See manifest.json (same directory) for the observation layout, units and frames.
 */
#ifndef ROBOLEARN_POLICY_H
#define ROBOLEARN_POLICY_H

#define ROBOLEARN_OBS_DIM {spec.obs_dim}
#define ROBOLEARN_ACT_DIM {spec.act_dim}
#define ROBOLEARN_STATE_DIM {spec.state_dim}
#define ROBOLEARN_CONTROL_HZ {c_float(control_hz)}
#define ROBOLEARN_RPM_MIN {c_float(rpm_min)}
#define ROBOLEARN_RPM_MAX {c_float(rpm_max)}
#define ROBOLEARN_QUANTIZED_INT8 {1 if quantize == "int8" else 0}
#define ROBOLEARN_MANIFEST_SHA256_HEX "{manifest_sha256}"

#ifdef __cplusplus
extern "C" {{
#endif

/* One control step: raw observation (ROBOLEARN_OBS_DIM floats, layout in manifest.json)
 * -> normalized rotor commands (ROBOLEARN_ACT_DIM floats in [-1, 1]). Normalization and
 * clipping are inside; so is the integrator state (ROBOLEARN_STATE_DIM floats, updated
 * first on every call). Not reentrant (static state and scratch buffers). */
void robolearn_policy(const float *obs, float *action);

/* The same function under the name of the stateful contract. */
void robolearn_policy_step(const float *obs, float *action);

/* Starts an episode: zeroes the integrator state. Call it whenever the controller
 * (re)starts (take-off, after a disarm). A stateless policy has nothing to clear. */
void robolearn_policy_reset(void);

/* Copies the integrator state (ROBOLEARN_STATE_DIM floats) to z; nothing when 0. */
void robolearn_policy_state(float *z);

/* SHA-256 of manifest.json, announced in the hardware-in-the-loop handshake. */
extern const unsigned char robolearn_manifest_sha256[32];

/* Rotor speed (RPM) for a normalized action: rpm_min + (a + 1) / 2 * (rpm_max - rpm_min),
 * with a clipped to [-1, 1] as the simulator does. Returns 0 for a bad motor index. */
float robolearn_action_to_rpm(int motor, float action);

#ifdef __cplusplus
}}
#endif

#endif /* ROBOLEARN_POLICY_H */
"""


_ACT_C = {
    "tanh": "return fast_tanh(x);",
    "relu": "return x > 0.0f ? x : 0.0f;",
    # ELU(alpha = 1); expf(x) - 1 instead of expm1f keeps the libm surface to tanhf/expf
    # (absolute error ~1e-7 near 0, far below the 1e-5 budget).
    "elu": "return x > 0.0f ? x : expf(x) - 1.0f;",
    "silu": "return x / (1.0f + expf(-x));",
}

# tanh on [0, 8) as 128 cubic pieces in the local coordinate f in [0, 1) (|x| = (i + f) / 16),
# each the least-squares fit on 64 Chebyshev nodes of its piece (near minimax); 1 beyond 8
# (float32 tanh(8) = 1 - 2.3e-7). Max abs error 2.3e-7 evaluated in float32 against tanh
# over [-10, 10] (at the cut at 8; below it ~1e-7). 2 KB of float32 coefficients.
TANH_SCALE, TANH_SEGMENTS = 16, 128
_TANH_TABLE: list[np.ndarray] = []


def tanh_table() -> np.ndarray:
    """float32 (TANH_SEGMENTS, 4): coefficients c0..c3 of each piece (computed once)."""
    if not _TANH_TABLE:
        k = np.arange(64)
        f = 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / 64)
        basis = np.vander(f, 4, increasing=True)
        rows = [np.linalg.lstsq(basis, np.tanh((i + f) / TANH_SCALE), rcond=None)[0] for i in range(TANH_SEGMENTS)]
        _TANH_TABLE.append(np.array(rows).astype(np.float32))
    return _TANH_TABLE[0]


def _tanh_c() -> str:
    return f"""/* tanh by table: |x| = (i + f) / {TANH_SCALE}, f in [0, 1), a cubic in f per piece i < {TANH_SEGMENTS}; +-1 beyond
 * |x| = {TANH_SEGMENTS // TANH_SCALE}. Max abs error 2.3e-7 in float32 against tanh, inside the 1e-5 export budget.
 * About 25 instructions (4 coefficient loads, 3 multiply-adds, no division); the earlier rational
 * x P(x^2) / Q(x^2) took 10 multiply-adds and a 14-cycle VDIV, newlib's tanhf ~90 instructions. */
{_array("float", "tanh_tab", tanh_table(), c_float, per_line=4, attr=True)}
static inline float fast_tanh(float x)
{{
    const float a = x < 0.0f ? -x : x;
    const float u = a * {c_float(TANH_SCALE)};
    float y = 1.0f;
    if (u < {c_float(TANH_SEGMENTS)}) {{
        const int i = (int)u;
        const float f = u - (float)i;
        const float *c = tanh_tab + 4 * i;
        y = c[0] + f * (c[1] + f * (c[2] + f * c[3]));
    }}
    return x < 0.0f ? -y : y;
}}

"""


def _dense_f32(name: str, act: str | None) -> str:
    """The float32 kernel; ``act`` None: linear output, else the activation applied as it stores."""
    f = (lambda v: f"activation({v})") if act else (lambda v: v)
    return f"""/* y = {'act(' if act else ''}W x + b{')' if act else ''} for {BLOCK} output rows at a time. Weights are stored
 * [out / {BLOCK}][in][{BLOCK}] so they stream strictly sequentially and each input is loaded once per
 * block; four independent accumulators (seeded with the bias) let the FPU overlap the
 * multiply-adds; the input loop is unrolled by 4 (one branch per 16 MACs). */
static void {name}(const float *w, const float *b, const float *x, float *y, int n_out, int n_in)
{{
    const int n4 = n_in - n_in % 4;
    int o, i;
    for (o = 0; o < n_out; o += {BLOCK}) {{
        float a0 = b[o], a1 = b[o + 1], a2 = b[o + 2], a3 = b[o + 3];
#if RL_VLDM_KERNEL
        const float *xp = x;
        for (i = 0; i < n4; i += 4) {{
            /* 4 inputs and 16 weights by two VLDMs (1 + N cycles) instead of 20 VLDRs; the
             * same products and sums in the same order as the C below (bit-identical). */
            __asm("vldmia %[x]!, {{s12-s15}}\\n\\t"
                  "vldmia %[w]!, {{s16-s31}}\\n\\t"
                  "vmul.f32 s16, s16, s12\\n\\tvmul.f32 s17, s17, s12\\n\\tvmul.f32 s18, s18, s12\\n\\tvmul.f32 s19, s19, s12\\n\\t"
                  "vadd.f32 %[a0], %[a0], s16\\n\\tvadd.f32 %[a1], %[a1], s17\\n\\tvadd.f32 %[a2], %[a2], s18\\n\\tvadd.f32 %[a3], %[a3], s19\\n\\t"
                  "vmul.f32 s20, s20, s13\\n\\tvmul.f32 s21, s21, s13\\n\\tvmul.f32 s22, s22, s13\\n\\tvmul.f32 s23, s23, s13\\n\\t"
                  "vadd.f32 %[a0], %[a0], s20\\n\\tvadd.f32 %[a1], %[a1], s21\\n\\tvadd.f32 %[a2], %[a2], s22\\n\\tvadd.f32 %[a3], %[a3], s23\\n\\t"
                  "vmul.f32 s24, s24, s14\\n\\tvmul.f32 s25, s25, s14\\n\\tvmul.f32 s26, s26, s14\\n\\tvmul.f32 s27, s27, s14\\n\\t"
                  "vadd.f32 %[a0], %[a0], s24\\n\\tvadd.f32 %[a1], %[a1], s25\\n\\tvadd.f32 %[a2], %[a2], s26\\n\\tvadd.f32 %[a3], %[a3], s27\\n\\t"
                  "vmul.f32 s28, s28, s15\\n\\tvmul.f32 s29, s29, s15\\n\\tvmul.f32 s30, s30, s15\\n\\tvmul.f32 s31, s31, s15\\n\\t"
                  "vadd.f32 %[a0], %[a0], s28\\n\\tvadd.f32 %[a1], %[a1], s29\\n\\tvadd.f32 %[a2], %[a2], s30\\n\\tvadd.f32 %[a3], %[a3], s31"
                  : [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [w] "+r"(w), [x] "+r"(xp)
                  :
                  : "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23",
                    "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "memory");
        }}
#else
        for (i = 0; i < n4; i += 4) {{
            const float x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
            a0 += w[0] * x0; a1 += w[1] * x0; a2 += w[2] * x0; a3 += w[3] * x0;
            a0 += w[4] * x1; a1 += w[5] * x1; a2 += w[6] * x1; a3 += w[7] * x1;
            a0 += w[8] * x2; a1 += w[9] * x2; a2 += w[10] * x2; a3 += w[11] * x2;
            a0 += w[12] * x3; a1 += w[13] * x3; a2 += w[14] * x3; a3 += w[15] * x3;
            w += 4 * {BLOCK};
        }}
#endif
        for (; i < n_in; ++i) {{
            const float x0 = x[i];
            a0 += w[0] * x0; a1 += w[1] * x0; a2 += w[2] * x0; a3 += w[3] * x0;
            w += {BLOCK};
        }}
        y[o] = {f('a0')};
        y[o + 1] = {f('a1')};
        y[o + 2] = {f('a2')};
        y[o + 3] = {f('a3')};
    }}
}}
"""


_INT8_PRIMS = """/* Two int16 lanes per 32-bit word (lane 0 in the low half). On the Cortex-M4 (DSP extension)
 * SXTB16 sign-extends bytes 0 and 2 of a word into the two lanes and SMLAD adds both lane
 * products to an accumulator: 2 MACs per single-cycle instruction (ARM DDI 0439B, table 3-1).
 * Elsewhere the same integer arithmetic in plain C (no overflow: |acc| < 2^31 by construction). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define RL_SXTB16(w) ((unsigned)__sxtb16((int)(w)))
/* SXTB16 with its built-in ROR #8 (gcc 12 emits a separate ROR for the C rotate) */
static inline unsigned rl_sxtb16_ror8(unsigned w)
{
    unsigned r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}
#define RL_SXTB16_ROR8(w) rl_sxtb16_ror8(w)
#define RL_SMLAD(a, b, acc) ((int)__smlad((int)(a), (int)(b), (acc)))
#else
static int rl_lane(unsigned v, int k)
{
    const unsigned h = (v >> (16 * k)) & 0xffffu;
    return h >= 0x8000u ? (int)h - 0x10000 : (int)h;
}
static unsigned rl_sxtb16(unsigned w)
{
    const unsigned lo = w & 0xffu, hi = (w >> 16) & 0xffu;
    return (lo >= 0x80u ? lo | 0xff00u : lo) | ((hi >= 0x80u ? hi | 0xff00u : hi) << 16);
}
#define RL_SXTB16(w) rl_sxtb16(w)
#define RL_SXTB16_ROR8(w) rl_sxtb16(((w) >> 8) | ((w) << 24))
#define RL_SMLAD(a, b, acc) ((acc) + rl_lane((a), 0) * rl_lane((b), 0) + rl_lane((a), 1) * rl_lane((b), 1))
#endif

/* float -> q15 as a 16-bit lane: saturated at +-32767, then rounded to nearest (ties to even)
 * without a branch: adding and subtracting 1.5 * 2^23 leaves the float rounded to an integer
 * (IEEE 754 round to nearest; exact for |v| < 2^22), which the conversion then takes as is. */
static inline unsigned rl_q15(float v)
{
    v = v < -32767.0f ? -32767.0f : (v > 32767.0f ? 32767.0f : v);
    v = (v + 12582912.0f) - 12582912.0f;
    return (unsigned)(int)v & 0xffffu;
}

/* The same for a value known to lie within [-32767.01, 32767.01] (tanh x 32767): no saturation. */
static inline unsigned rl_q15_bounded(float v)
{
    v = (v + 12582912.0f) - 12582912.0f;
    return (unsigned)(int)v & 0xffffu;
}

"""


def _dense_int8(name: str, act: str | None) -> str:
    """The int8 kernel. ``act``: hidden layer (activation, then q15 pairs into ``yq``);
    None: output layer (float pre-activations into ``y``)."""
    if act:
        sig = "const float *inv_out, unsigned *yq"
        qf = "rl_q15_bounded" if act == "tanh" else "rl_q15"
        store = f"""        {{
            const float t0 = activation(f0) * inv_out[0], t1 = activation(f1) * inv_out[0];
            const float t2 = activation(f2) * inv_out[0], t3 = activation(f3) * inv_out[0];
            yq[o / 2] = {qf}(t0) | ({qf}(t1) << 16);
            yq[o / 2 + 1] = {qf}(t2) | ({qf}(t3) << 16);
        }}"""
    else:
        sig = "float *y"
        store = """        y[o] = f0;
        y[o + 1] = f1;
        y[o + 2] = f2;
        y[o + 3] = f3;"""
    return f"""/* {BLOCK} output rows at a time: int32 acc = sum q_w * q_x (SMLAD), then requantized per row in
 * float32, f = acc * rs[row] + b[row] (rs = weight scale of the row x input scale).
 * w: [out / {BLOCK}][in4 / 4][{BLOCK} rows] words of 4 int8 (see packed_int8_words); x: in4 / 2 words,
 * each two q15 inputs. */
static void {name}(const unsigned *w, const float *rs, const float *b, const unsigned *x, {sig},
                  int n_out, int n_words)
{{
    int o, i;
    for (o = 0; o < n_out; o += {BLOCK}) {{
        int a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (i = 0; i < n_words; i += 2) {{
            const unsigned x01 = x[i], x23 = x[i + 1];
            const unsigned r0 = w[0], r1 = w[1], r2 = w[2], r3 = w[3];
            a0 = RL_SMLAD(RL_SXTB16(r0), x01, a0);
            a0 = RL_SMLAD(RL_SXTB16_ROR8(r0), x23, a0);
            a1 = RL_SMLAD(RL_SXTB16(r1), x01, a1);
            a1 = RL_SMLAD(RL_SXTB16_ROR8(r1), x23, a1);
            a2 = RL_SMLAD(RL_SXTB16(r2), x01, a2);
            a2 = RL_SMLAD(RL_SXTB16_ROR8(r2), x23, a2);
            a3 = RL_SMLAD(RL_SXTB16(r3), x01, a3);
            a3 = RL_SMLAD(RL_SXTB16_ROR8(r3), x23, a3);
            w += {BLOCK};
        }}
        {{
        const float f0 = (float)a0 * rs[o] + b[o], f1 = (float)a1 * rs[o + 1] + b[o + 1];
        const float f2 = (float)a2 * rs[o + 2] + b[o + 2], f3 = (float)a3 * rs[o + 3] + b[o + 3];
{store}
        }}
    }}
}}
"""


def generate_source(spec: PolicySpec, manifest_sha256: str, quantize: str | None) -> str:
    sha = bytes.fromhex(manifest_sha256)
    sizes = spec.layer_sizes
    n = len(spec.weights)
    k = spec.state_dim
    n0 = spec.net_in_dim
    int8 = quantize == "int8"
    model = int8_model(spec) if int8 else None
    uses_tanh = "tanh" in (spec.activation, spec.output_activation)
    parts = [f"""/* policy.c - generated by robolearn firmware_export; do not edit.
 * Network: MLP {'-'.join(map(str, sizes))}, activation {spec.activation}, output {spec.output_activation},
 * weights {'int8 (per-row scales), int16 activations, int32 accumulation' if int8 else 'float32'}; policy.pt SHA-256 {spec.sha256 or '-'}.
 * State: {f'integrator of {k} observation entries' if k else 'none (stateless)'}.
 * action = clip(out(mlp(clip((x - mean) * inv_std, -{spec.obs_clip:g}, {spec.obs_clip:g}))), low, high), x = concat(obs, z)
 * Build with -ffp-contract=off (no fused multiply-add) for float results bit-identical to the
 * host build that the export verified; with contraction they differ by rounding only.
 */
#include "policy.h"

#include <math.h>

#define OBS_CLIP {c_float(spec.obs_clip)}

/* Where the layer constants live. Default: flash (static const). A firmware may define it,
 * e.g. as __attribute__((section(".data.robolearn_weights"))), to have them copied into
 * zero-wait-state RAM at reset: robolearn's STM32F405 image does, which saves the 5 flash
 * wait states at 168 MHz (RM0090 rev 19, table 10) on every weight line. */
#ifndef ROBOLEARN_WEIGHTS_ATTR
#define ROBOLEARN_WEIGHTS_ATTR
#endif

const unsigned char robolearn_manifest_sha256[32] = {{
    {", ".join(f"0x{b:02x}" for b in sha[:16])},
    {", ".join(f"0x{b:02x}" for b in sha[16:])}
}};

"""]
    if k:
        parts.append(f"""/* Integrator (robolearn.actor/2): z = clip(z + GAIN * obs[index], -LIMIT, LIMIT), first, every step. */
#define INTEGRATOR_GAIN {c_float(spec.integrator_gain)}
#define INTEGRATOR_LIMIT {c_float(spec.integrator_limit)}
static const int integrator_index[{k}] = {{{", ".join(str(int(i)) for i in spec.integrator_index)}}};
static float state[{k}];

""")
    parts.append(_array("float", "obs_mean", spec.obs_mean, c_float))
    if int8:
        parts.append(_array("float", "obs_inv_std", spec.obs_inv_std, c_float))
    else:
        # |x - mean| <= c / inv_std  <=>  |(x - mean) * inv_std| <= c: the clip in raw units.
        lim = (np.float64(spec.obs_clip) / spec.obs_inv_std.astype(np.float64)).astype(np.float32)
        parts.append("/* clip of (x - mean) in raw units: c * std (1 / std is folded into layer 0) */\n")
        parts.append(_array("float", "obs_lim", lim, c_float))
    parts.append(_array("float", "action_low", spec.action_low, c_float))
    parts.append(_array("float", "action_high", spec.action_high, c_float))
    for i in range(n):
        o, kin = spec.weights[i].shape
        if model is not None:
            words = packed_int8_words(model.layers[i].q)
            parts.append(f"\n/* layer {i}: {kin} -> {o}, int8, {len(words)} words [out / {BLOCK}][in / 4][{BLOCK}]"
                         f" (rows padded to {padded_rows(o)}, inputs to {padded_inputs(kin)}, with zeros);"
                         f" rs = row scale x input scale {model.in_scale[i]:.9g} */\n")
            parts.append(_array("unsigned", f"w{i}", words, lambda v: f"0x{int(v):08x}u", attr=True))
            parts.append(_array("float", f"rs{i}", _pad(model.row_scale(i), 1.0), c_float, attr=True))
            if i < n - 1:
                parts.append(f"static const float inv_out{i}[1] = {{{c_float(model.out_inv_scale[i])}}};\n")
        else:
            w = spec.weights[i].astype(np.float64)
            if i == 0:
                w = w * spec.obs_inv_std.astype(np.float64)[None, :]
            note = " (x 1 / std of the normalizer, folded in)" if i == 0 else ""
            parts.append(f"\n/* layer {i}: {kin} -> {o}{note}, blocked [out / {BLOCK}][in][{BLOCK}]"
                         f"{f' (rows padded to {padded_rows(o)} with zeros)' if padded_rows(o) != o else ''} */\n")
            parts.append(_array("float", f"w{i}", blocked(w.astype(np.float32)), c_float, attr=True))
        parts.append(_array("float", f"b{i}", _pad(spec.biases[i]), c_float, attr=True))
    max_w = max([padded_inputs(n0)] + [padded_rows(w.shape[0]) for w in spec.weights])
    tanh_fn = _tanh_c() if uses_tanh else ""
    parts.append(f"""
{tanh_fn}static float activation(float x)
{{
    {_ACT_C[spec.activation]}
}}

""")
    integ = ""
    if k:
        integ = f"""    for (i = 0; i < {k}; ++i) {{
        const float v = state[i] + INTEGRATOR_GAIN * obs[integrator_index[i]];
        state[i] = v < -INTEGRATOR_LIMIT ? -INTEGRATOR_LIMIT : (v > INTEGRATOR_LIMIT ? INTEGRATOR_LIMIT : v);
    }}
"""
    out_v = "fast_tanh(y[i])" if spec.output_activation == "tanh" else "y[i]"
    tail = f"""    for (i = 0; i < ROBOLEARN_ACT_DIM; ++i) {{
        float v = {out_v};
        v = v > action_low[i] ? v : action_low[i];
        action[i] = v < action_high[i] ? v : action_high[i];
    }}
}}
"""
    if model is None:
        parts.append("""/* The Cortex-M4F (ARMv7E-M with a single-precision FPU) gets the float kernel's loads as
 * VLDM; everything else (the host build the export verifies) the same arithmetic in C.
 * Define ROBOLEARN_PORTABLE_C to use the C everywhere. */
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && defined(__GNUC__) && !defined(ROBOLEARN_PORTABLE_C)
#define RL_VLDM_KERNEL 1
#else
#define RL_VLDM_KERNEL 0
#endif

""")
        parts.append(_dense_f32("dense_act", spec.activation))
        parts.append(_dense_f32("dense_out", None))
        parts.append(f"""
/* Scratch: activations ping-pong between two static buffers (no stack arrays, no heap). */
#define MAX_WIDTH {max_w}
static float buf_a[MAX_WIDTH];
static float buf_b[MAX_WIDTH];

void robolearn_policy(const float *obs, float *action)
{{
    float *y;
    int i;
{integ}    /* x - mean, clipped to +-c * std (1 / std is in w0) */
    for (i = 0; i < ROBOLEARN_OBS_DIM; ++i) {{
        const float d = obs[i] - obs_mean[i];
        buf_a[i] = d < -obs_lim[i] ? -obs_lim[i] : (d > obs_lim[i] ? obs_lim[i] : d);
    }}
""")
        if k:
            parts.append(f"""    for (i = 0; i < {k}; ++i) {{
        const float d = state[i] - obs_mean[ROBOLEARN_OBS_DIM + i];
        const float l = obs_lim[ROBOLEARN_OBS_DIM + i];
        buf_a[ROBOLEARN_OBS_DIM + i] = d < -l ? -l : (d > l ? l : d);
    }}
""")
        src, dst = "buf_a", "buf_b"
        for i in range(n):
            o, kin = spec.weights[i].shape
            fn = "dense_act" if i < n - 1 else "dense_out"
            parts.append(f"    {fn}(w{i}, b{i}, {src}, {dst}, {o}, {kin});\n")
            src, dst = dst, src
        parts.append(f"    y = {src};\n" + tail)
    else:
        parts.append(_INT8_PRIMS)
        parts.append(_dense_int8("dense_act", spec.activation))
        parts.append(_dense_int8("dense_out", None))
        parts.append(f"""
/* Scratch: q15 activations, two per word, ping-pong between two static buffers; the output
 * layer's pre-activations in float. Padding lanes stay 0 (zero weights and biases). */
#define MAX_WORDS {max_w // 2}
static unsigned q_a[MAX_WORDS];
static unsigned q_b[MAX_WORDS];
static float y_out[{padded_rows(spec.act_dim)}];

static float normalized(float v, int j)
{{
    v = (v - obs_mean[j]) * obs_inv_std[j];
    return v < -OBS_CLIP ? -OBS_CLIP : (v > OBS_CLIP ? OBS_CLIP : v);
}}

void robolearn_policy(const float *obs, float *action)
{{
    const float in_inv = {c_float(float(np.float32(1.0 / np.float32(model.in_scale[0]))))};
    const float *y = y_out;
    int i;
{integ}    /* normalized, clipped input -> q15 pairs (zero padding) */
    for (i = 0; i < {padded_inputs(n0)}; i += 2) {{
""")
        def src_expr(j: str) -> str:
            if k:
                return (f"({j} < ROBOLEARN_OBS_DIM ? obs[{j}] : state[{j} - ROBOLEARN_OBS_DIM])")
            return f"obs[{j}]"
        parts.append(f"""        const unsigned lo = i < {n0} ? rl_q15(normalized({src_expr('i')}, i) * in_inv) : 0u;
        const unsigned hi = i + 1 < {n0} ? rl_q15(normalized({src_expr('i + 1')}, i + 1) * in_inv) : 0u;
        q_a[i / 2] = lo | (hi << 16);
    }}
""")
        src, dst = "q_a", "q_b"
        for i in range(n):
            o, kin = spec.weights[i].shape
            n_words = padded_inputs(kin) // 2
            if i < n - 1:
                parts.append(f"    dense_act(w{i}, rs{i}, b{i}, {src}, inv_out{i}, {dst}, {o}, {n_words});\n")
                src, dst = dst, src
            else:
                parts.append(f"    dense_out(w{i}, rs{i}, b{i}, {src}, y_out, {o}, {n_words});\n")
        parts.append(tail)
    reset = (f"""    int i;
    for (i = 0; i < {k}; ++i) {{
        state[i] = 0.0f;
    }}""" if k else "    /* Stateless: nothing to clear. */")
    get = (f"""    int i;
    for (i = 0; i < {k}; ++i) {{
        z[i] = state[i];
    }}""" if k else "    (void)z;")
    parts.append(f"""
void robolearn_policy_step(const float *obs, float *action)
{{
    robolearn_policy(obs, action);
}}

void robolearn_policy_reset(void)
{{
{reset}
}}

void robolearn_policy_state(float *z)
{{
{get}
}}

float robolearn_action_to_rpm(int motor, float action)
{{
    if (motor < 0 || motor >= ROBOLEARN_ACT_DIM) {{
        return 0.0f;
    }}
    action = action < -1.0f ? -1.0f : (action > 1.0f ? 1.0f : action);
    return ROBOLEARN_RPM_MIN + 0.5f * (action + 1.0f) * (ROBOLEARN_RPM_MAX - ROBOLEARN_RPM_MIN);
}}
""")
    return "".join(parts)
