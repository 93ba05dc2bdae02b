"""The PP-OCRv6 text recognizer as a trainable PyTorch module, read from its ONNX file.

The ``rapidocr`` wheel ships ``PP-OCRv6_rec_small.onnx`` (PPLCNetV3-style convolutions, an SVTR
attention neck and a CTC head over an 18,710-symbol dictionary). :class:`OnnxRecognizer` runs
that ONNX graph node by node with torch operations; every float weight of the graph becomes an
``nn.Parameter`` named after its ONNX initializer, so the same graph can be fine-tuned with any
torch optimizer and written back with :func:`export_onnx` (the original graph, new weights), which
ONNX Runtime then runs at the stock model's speed.

Only the ~25 operator types this graph uses are implemented; an unknown one raises at load
time, naming it. BatchNormalization always uses its running statistics (it stays frozen).
The output layer can be cut to a smaller alphabet (:meth:`OnnxRecognizer.restrict_output`), and
the final softmax is skipped on request so training gets logits.

>>> net = OnnxRecognizer.from_onnx(stock_onnx_path())
>>> net.restrict_output([0, *indices])        # blank + the symbols we keep
>>> logits = net(batch, softmax=False)          # [B, W/8, len(kept)]
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

# the ONNX initializers that are graph constants (shapes, axes, scalars) stay plain tensors;
# only these operators' weight inputs become parameters
_WEIGHT_OPS = {"Conv": (1, 2), "MatMul": (1,), "Add": (1,), "Mul": (1,), "BatchNormalization": (1, 2, 3, 4)}


def stock_onnx_path() -> Path:
    """The recognizer that the installed ``rapidocr`` wheel ships."""
    import rapidocr

    path = Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the installed rapidocr wheel has no PP-OCRv6 recognizer "
                                "(pip install 'rapidocr>=3,<4')")
    return path


def onnx_dictionary(path: str | Path) -> list[str]:
    """The recognizer's symbols (index 0 is the CTC blank; a space is appended last, as rapidocr does)."""
    model = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    return ["<blank>", *meta["character"].splitlines(), " "]


def _same_upper_pads(kernel: list[int]) -> list[int]:
    """Explicit [top, left, bottom, right] pads of auto_pad=SAME_UPPER for stride 1."""
    total = [k - 1 for k in kernel]
    return [t // 2 for t in total] + [t - t // 2 for t in total]


class OnnxRecognizer(nn.Module):
    """An ONNX recognizer graph executed with torch ops; weights are trainable parameters."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        self.graph_proto = model
        graph = model.graph
        init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        weight_names = {n.input[i] for n in graph.node if n.op_type in _WEIGHT_OPS
                        for i in _WEIGHT_OPS[n.op_type] if i < len(n.input) and n.input[i] in init
                        and init[n.input[i]].dtype == np.float32 and init[n.input[i]].ndim >= 1}
        self.params = nn.ParameterDict({self._key(n): nn.Parameter(torch.from_numpy(init[n].copy()))
                                        for n in sorted(weight_names)})
        self.constants = {n: torch.from_numpy(np.array(v)) for n, v in init.items() if n not in weight_names}
        self.nodes = [(n.op_type, list(n.input), list(n.output), {a.name: helper.get_attribute_value(a) for a in n.attribute})
                      for n in graph.node]
        unknown = {op for op, *_ in self.nodes} - set(_OPS)
        if unknown:
            raise NotImplementedError(f"ONNX operators not supported by OnnxRecognizer: {sorted(unknown)}")
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.softmax_node = next((i for i, node in enumerate(self.nodes) if node[2] == [self.output_name]
                                  and node[0] == "Softmax"), None)
        self.head = self._head_names()

    @classmethod
    def from_onnx(cls, path: str | Path) -> "OnnxRecognizer":
        return cls(onnx.load(str(path)))

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")

    def _head_names(self) -> tuple[str, str]:
        """The output layer's weight and bias (the last MatMul and the Add after it)."""
        matmul = [node for node in self.nodes if node[0] == "MatMul" and self._key(node[1][1]) in self.params][-1]
        add = next(node for node in self.nodes if node[0] == "Add" and node[1][0] == matmul[2][0])
        return matmul[1][1], add[1][1]

    def restrict_output(self, keep: list[int]) -> None:
        """Keep only these output symbols (in this order) of the CTC head."""
        weight, bias = (self._key(n) for n in self.head)
        index = torch.tensor(keep)
        self.params[weight] = nn.Parameter(self.params[weight].data[:, index].clone())
        self.params[bias] = nn.Parameter(self.params[bias].data[index].clone())

    def feature_name(self) -> str:
        """The tensor feeding the CTC head (the backbone's per-frame features, [B, W/8, C])."""
        return next(node for node in self.nodes if node[0] == "MatMul" and node[1][1] == self.head[0])[1][0]

    def truncate(self, output_name: str) -> None:
        """Stop the graph at ``output_name`` (e.g. :meth:`feature_name`): the nodes after it and the
        weights only they use are dropped, ``forward`` returns that tensor (``softmax`` is ignored).
        A truncated graph is no longer exportable with :func:`export_onnx`."""
        last = max(i for i, node in enumerate(self.nodes) if output_name in node[2])
        self.nodes = self.nodes[: last + 1]
        self._drop = None  # which values to free after which node: recomputed
        used = {self._key(name) for _, inputs, *_ in self.nodes for name in inputs}
        for key in [k for k in self.params if k not in used]:
            del self.params[key]
        self.output_name, self.softmax_node = output_name, None

    def freeze_batchnorm(self) -> None:
        """BatchNormalization scale/shift and statistics are left as trained (frozen)."""
        for op, inputs, *_ in self.nodes:
            if op == "BatchNormalization":
                for name in inputs[1:]:
                    self.params[self._key(name)].requires_grad_(False)

    def freeze_before(self, fraction: float) -> int:
        """Freeze the weights of the first ``fraction`` of the graph's nodes (the low-level stroke
        features); returns how many parameters stay trainable. No gradient flows there at all."""
        cut = int(len(self.nodes) * fraction)
        for op, inputs, *_ in self.nodes[:cut]:
            for name in inputs:
                if self._key(name) in self.params:
                    self.params[self._key(name)].requires_grad_(False)
        return sum(p.numel() for p in self.params.values() if p.requires_grad)

    def value(self, name: str, env: dict[str, torch.Tensor]) -> torch.Tensor:
        if name in env:
            return env[name]
        key = self._key(name)
        if key in self.params:
            return self.params[key]
        return self.constants[name]

    def _last_uses(self) -> list[list[str]]:
        """Per node, the values no later node reads (freed after it: memory stays one layer deep)."""
        last: dict[str, int] = {}
        for i, (_, inputs, _, _) in enumerate(self.nodes):
            for name in inputs:
                last[name] = i
        drop: list[list[str]] = [[] for _ in self.nodes]
        for name, i in last.items():
            if name != self.output_name:
                drop[i].append(name)
        return drop

    def forward(self, x: torch.Tensor, softmax: bool = True) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        if getattr(self, "_drop", None) is None or len(self._drop) != len(self.nodes):
            self._drop = self._last_uses()
        for i, (op, inputs, outputs, attrs) in enumerate(self.nodes):
            args = [self.value(n, env) if n else None for n in inputs]
            if i == self.softmax_node and not softmax:
                env[outputs[0]] = args[0]
            else:
                env[outputs[0]] = _OPS[op](*args, **attrs)
            for name in self._drop[i]:
                env.pop(name, None)
        return env[self.output_name]

    def load_weights_into(self, model: onnx.ModelProto) -> None:
        """Overwrite ``model``'s initializers with this module's weights (those it holds)."""
        for tensor in model.graph.initializer:
            key = self._key(tensor.name)
            if key in self.params:
                tensor.CopyFrom(numpy_helper.from_array(self.params[key].detach().cpu().numpy().astype(np.float32),
                                                        tensor.name))

    def to_onnx_model(self) -> onnx.ModelProto:
        """The original graph with this module's weights (and output size)."""
        model = copy.deepcopy(self.graph_proto)
        self.load_weights_into(model)
        del model.graph.value_info[:]  # intermediate shapes of the stock head no longer hold
        rows = model.graph.input[0].type.tensor_type.shape.dim[2]
        rows.Clear()
        rows.dim_param = "height"  # the network takes other line heights too (LineSettings.height)
        out = model.graph.output[0].type.tensor_type.shape
        out.dim[-1].Clear()
        out.dim[-1].dim_value = int(self.params[self._key(self.head[1])].shape[0])
        return model


def export_onnx(module: OnnxRecognizer, path: str | Path) -> Path:
    """Write the module as ONNX (the stock graph, fine-tuned weights, softmax output)."""
    path = Path(path)
    onnx.save(module.to_onnx_model(), str(path))
    return path


# ------------------------------------------------------------------ operators (ONNX semantics)
def _conv(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, auto_pad=b"NOTSET",
          kernel_shape=None):
    if auto_pad in (b"SAME_UPPER", "SAME_UPPER"):
        pads = _same_upper_pads(list(w.shape[2:]))
    top, left, bottom, right = pads
    if top != bottom or left != right:
        x = F.pad(x, (left, right, top, bottom))
        top = left = 0
    return F.conv2d(x, w, b, tuple(strides), (top, left), tuple(dilations), group)


def _maxpool(x, kernel_shape, strides=(1, 1), pads=(0, 0, 0, 0), auto_pad=b"NOTSET", ceil_mode=0):
    if auto_pad in (b"SAME_UPPER", "SAME_UPPER"):
        pads = _same_upper_pads(list(kernel_shape))
    top, left, bottom, right = pads
    x = F.pad(x, (left, right, top, bottom), value=-math.inf)
    return F.max_pool2d(x, tuple(kernel_shape), tuple(strides), ceil_mode=bool(ceil_mode))


def _avgpool(x, kernel_shape, strides, pads=(0, 0, 0, 0), ceil_mode=0, count_include_pad=0):
    assert not any(pads), "padded AveragePool is not used by this graph"
    return F.avg_pool2d(x, tuple(kernel_shape), tuple(strides), ceil_mode=bool(ceil_mode))


def _batchnorm(x, scale, bias, mean, var, epsilon=1e-5, momentum=0.9):
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=epsilon)


def _reshape(x, shape, allowzero=0):
    dims = [int(d) for d in shape.tolist()]
    dims = [x.shape[i] if d == 0 and not allowzero else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _slice(x, starts, ends, axes=None, steps=None):
    axes = axes.tolist() if axes is not None else list(range(len(starts)))
    steps = steps.tolist() if steps is not None else [1] * len(axes)
    index = [slice(None)] * x.dim()
    for axis, start, end, step in zip(axes, starts.tolist(), ends.tolist(), steps):
        size = x.shape[axis]
        index[axis] = slice(max(-size, min(start, size)), max(-size - 1, min(end, size)), step)
    return x[tuple(index)]


def _squeeze(x, axes=None):
    for axis in sorted(axes or [], reverse=True):
        x = x.squeeze(axis)
    return x


def _unsqueeze(x, axes):
    for axis in sorted(axes):
        x = x.unsqueeze(axis)
    return x


def _concat(*xs, axis):
    return torch.cat([t.to(xs[0].dtype) for t in xs], dim=axis)


_OPS = {
    "Identity": lambda x: x,
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "Pow": torch.pow,
    "Sqrt": torch.sqrt,
    "Erf": torch.erf,
    "Relu": F.relu,
    "Sigmoid": torch.sigmoid,
    "HardSigmoid": lambda x, alpha=0.2, beta=0.5: torch.clamp(alpha * x + beta, 0, 1),
    "Softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
    "MatMul": torch.matmul,
    "Conv": _conv,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "BatchNormalization": _batchnorm,
    "ReduceMean": lambda x, axes, keepdims=1: x.mean(dim=tuple(axes), keepdim=bool(keepdims)),
    "Transpose": lambda x, perm: x.permute(*perm),
    "Reshape": _reshape,
    "Shape": lambda x: torch.tensor(x.shape, dtype=torch.int64),
    "Slice": _slice,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
}
