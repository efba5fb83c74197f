"""The globals a checkpoint pickle may import: exact ``module.name`` pairs, nothing by prefix.

The defaults fit the models people ship: numpy arrays, dtypes, scalars and random states; scipy sparse
matrices; scikit-learn estimators (every class :func:`sklearn.utils.all_estimators` lists, as skops trusts
them) and the helper types their pickles hold (trees, losses, binners); PyTorch's ``weights_only`` rebuild
functions, storages and dtypes; xgboost and lightgbm boosters and their scikit-learn wrappers; a few
collections and builtin containers. A deployment adds names through the policy's ``[modelscan] allow``
or a one-off ``scan-model --allow``; every added name that a file uses is named in the report.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_SCALARS = ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                  "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble", "str_", "bytes_",
                  "datetime64", "timedelta64", "intc", "uintc", "longlong", "ulonglong", "void")  # fmt: skip
_NUMPY_DTYPES = ("BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType", "UInt16DType",
                 "UInt32DType", "UInt64DType", "Float16DType", "Float32DType", "Float64DType", "LongDoubleDType",
                 "Complex64DType", "Complex128DType", "StrDType", "BytesDType", "ObjectDType", "StringDType",
                 "DateTime64DType", "TimeDelta64DType", "VoidDType")  # fmt: skip
_BIT_GENERATORS = (("numpy.random._mt19937", "MT19937"), ("numpy.random._pcg64", "PCG64"),
                   ("numpy.random._pcg64", "PCG64DXSM"), ("numpy.random._philox", "Philox"),
                   ("numpy.random._sfc64", "SFC64"))  # fmt: skip
_TORCH_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
                   "ComplexFloat", "ComplexDouble", "Untyped", "QInt8", "QUInt8", "QInt32", "QUInt4x2")  # fmt: skip
_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                 "complex64", "complex128", "half", "float", "double", "long", "int", "short", "cfloat", "cdouble",
                 "float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64", "qint8", "quint8", "qint32")  # fmt: skip
# torch.serialization's weights_only unpickler: the rebuild functions it allows
_TORCH_REBUILD = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                  "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_meta_tensor_no_storage",
                  "_rebuild_nested_tensor", "_rebuild_qtensor", "_rebuild_device_tensor_from_numpy",
                  "_rebuild_wrapper_subclass")  # fmt: skip
# helper types inside scikit-learn pickles that are not estimators themselves (skops trusts these too)
_SKLEARN_HELPERS = (
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    ("sklearn._loss.link", "Interval"),
    ("sklearn._loss.link", "IdentityLink"),
    ("sklearn._loss.link", "LogLink"),
    ("sklearn._loss.link", "LogitLink"),
    ("sklearn._loss.link", "HalfLogitLink"),
    ("sklearn._loss.link", "MultinomialLogit"),
    ("sklearn.neighbors._kd_tree", "KDTree"),
    ("sklearn.neighbors._ball_tree", "BallTree"),
    ("sklearn.utils._bunch", "Bunch"),
    # Cython helpers of the neighbour trees and metrics: newObj(cls) is cls.__new__(cls) for a cls judged itself
    ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.metrics._dist_metrics", "newObj"),
)
_SKLEARN_METRICS = ("Euclidean", "SEuclidean", "Manhattan", "Chebyshev", "Minkowski", "Mahalanobis", "Hamming",
                    "Canberra", "BrayCurtis", "Jaccard", "Matching", "Dice", "RogersTanimoto", "RussellRao",
                    "SokalMichener", "SokalSneath", "Haversine")  # fmt: skip
_SKLEARN_LOSSES = ("HalfSquaredError", "AbsoluteError", "PinballLoss", "HuberLoss", "HalfPoissonLoss",
                   "HalfGammaLoss", "HalfTweedieLoss", "HalfTweedieLossIdentity", "HalfBinomialLoss",
                   "ExponentialLoss", "HalfMultinomialLoss")  # fmt: skip
_SCIPY_SPARSE = (("_csr", "csr"), ("_csc", "csc"), ("_coo", "coo"), ("_bsr", "bsr"), ("_dia", "dia"),
                 ("_dok", "dok"), ("_lil", "lil"))  # fmt: skip

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _static_defaults() -> frozenset[tuple[str, str]]:
    s: set[tuple[str, str]] = {
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "Counter"),
        ("collections", "deque"),
        ("copyreg", "_reconstructor"),  # protocol 0/1: object.__new__(cls) for an allowed cls
        ("builtins", "object"),
        ("_codecs", "encode"),  # protocol 2 carries bytes as _codecs.encode(str, 'latin1')
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.ma.core", "MaskedArray"),
        ("numpy.ma", "MaskedArray"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("torch", "Size"),
        ("torch", "Tensor"),
        ("torch", "device"),
        ("torch", "strided"),
        ("torch", "sparse_coo"),
        ("torch", "per_tensor_affine"),
        ("torch.nn.parameter", "Parameter"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.serialization", "_get_layout"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),  # joblib's placeholder; its array bytes are read exactly
        ("xgboost.core", "Booster"),
        ("lightgbm.basic", "Booster"),
    }
    for b in ("set", "frozenset", "slice", "complex", "bytearray", "bytes", "list", "dict", "tuple", "int", "float",
              "str", "bool", "range"):  # fmt: skip
        s |= {("builtins", b), ("__builtin__", b)}
    for core in _NUMPY_CORE:
        s |= {(core, "_reconstruct"), (core, "scalar")}
    s |= {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}
    s |= {("numpy", t) for t in _NUMPY_SCALARS} | {("numpy.dtypes", t) for t in _NUMPY_DTYPES}
    s |= set(_BIT_GENERATORS)
    s |= {("torch._utils", f) for f in _TORCH_REBUILD}
    s |= {("torch", f"{t}Storage") for t in _TORCH_STORAGES} | {("torch", d) for d in _TORCH_DTYPES}
    s |= {("sklearn.metrics._dist_metrics", f"{m}Distance{b}") for m in _SKLEARN_METRICS for b in ("", "64", "32")}
    s |= set(_SKLEARN_HELPERS) | {("sklearn._loss.loss", n) for n in _SKLEARN_LOSSES}
    s |= {("sklearn._loss._loss", f"CyHalf{n[4:]}") for n in _SKLEARN_LOSSES if n.startswith("Half")}
    s |= {("sklearn._loss._loss", f"__pyx_unpickle_CyHalf{n[4:]}") for n in _SKLEARN_LOSSES if n.startswith("Half")}
    s |= {("sklearn._loss._loss", f"Cy{n}") for n in ("AbsoluteError", "PinballLoss", "HuberLoss", "ExponentialLoss")}
    for mod, kind in _SCIPY_SPARSE:
        s |= {(f"scipy.sparse.{mod}", f"{kind}_matrix"), (f"scipy.sparse.{mod}", f"{kind}_array")}
    for cls in ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"):
        s.add(("xgboost.sklearn", cls))
    for cls in ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker"):
        s.add(("lightgbm.sklearn", cls))
    return frozenset(s)


#: dataward's default trusted globals, besides the scikit-learn estimators found at run time
DEFAULT_GLOBALS: frozenset[tuple[str, str]] = _static_defaults()


@functools.cache
def sklearn_estimators() -> frozenset[tuple[str, str]]:
    """Every scikit-learn estimator class as pickle names it (``__module__``, ``__qualname__``)."""
    try:
        from sklearn.utils import all_estimators
    except ImportError:  # pragma: no cover - scikit-learn is a runtime dependency
        return frozenset()
    return frozenset((cls.__module__, cls.__qualname__) for _, cls in all_estimators())


def parse_allow(names: Iterable[str], where: str) -> frozenset[tuple[str, str]]:
    """``MODULE.NAME`` strings as (module, name) pairs; the last dot splits them. Raises ValueError."""
    out: set[tuple[str, str]] = set()
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n):
            raise ValueError(f"{where}: {n!r} is not MODULE.NAME (an exact global, no wildcards)")
        module, _, name = n.rpartition(".")
        out.add((module, name))
    return frozenset(out)


@dataclass(frozen=True)
class AllowList:
    """The defaults plus names a deployment added (``extra``), kept apart so reports can name them."""

    extra: frozenset[tuple[str, str]] = frozenset()
    extra_source: str = ""

    def allows(self, module: str, name: str) -> bool:
        """True when a pickle may import ``module.name``: a default
        global, an added one, or a known scikit-learn estimator.
        """
        pair = (module, name)
        if pair in DEFAULT_GLOBALS or pair in self.extra:
            return True
        return module.startswith("sklearn.") and pair in sklearn_estimators()

    def is_extra(self, module: str, name: str) -> bool:
        """True when ``module.name`` is allowed only because the deployment added it, so reports can name it."""
        pair = (module, name)
        return pair in self.extra and pair not in DEFAULT_GLOBALS and pair not in sklearn_estimators()
